"""The per-organization SSO settings API: owners only, discovery checked, the secret kept in."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.sso import crypto
from controlplane.sso.models import SsoConnection, SsoDomain
from controlplane.tenancy.models import Membership
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.sso.servers import DiscoveryServer, DnsZone

pytestmark = pytest.mark.django_db

SECRET = "very-secret-client-secret-value"


def _url(org: Any, rest: str = "") -> str:
    return f"/api/v1/orgs/{org.slug}/sso{rest}"


def _configure(owner: Any, discovery: DiscoveryServer, **body: Any) -> Any:
    payload = {
        "issuer": discovery.issuer("acme"),
        "client_id": "lakeplane-acme",
        "client_secret": SECRET,
        **body,
    }
    return owner.client.put(_url(owner.org), payload, format="json")


def test_owner_configures_the_provider_from_discovery(owner, discovery):
    response = _configure(owner, discovery, group_claim="roles")

    assert response.status_code == 201, response.content
    body = response.json()
    issuer = discovery.issuer("acme")
    assert body["issuer"] == issuer
    assert body["endpoints"] == {
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/me",
        "jwks_uri": f"{issuer}/jwks",
    }
    assert body["client_secret_set"] is True
    assert body["group_claim"] == "roles"
    assert body["login_url"] == f"/sso/start?org={owner.org.slug}"
    assert body["redirect_uri"].endswith("/sso/callback/")
    assert SECRET not in response.content.decode()
    stored = SsoConnection.objects.get(organization=owner.org)
    assert SECRET not in stored.client_secret_encrypted
    assert crypto.decrypt(stored.client_secret_encrypted) == SECRET

    again = owner.client.get(_url(owner.org))
    assert again.status_code == 200
    assert SECRET not in again.content.decode()

    events = AuditEvent.objects.filter(organization=owner.org, action__startswith="sso.")
    assert [e.action for e in events] == ["sso.connection_created"]
    assert SECRET not in str(events[0].data)
    assert events[0].data["client_secret_changed"] is True


def test_patch_changes_fields_and_keeps_the_secret(owner, discovery):
    _configure(owner, discovery)
    before = SsoConnection.objects.get(organization=owner.org).client_secret_encrypted

    response = owner.client.patch(_url(owner.org), {"default_role": "viewer"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["default_role"] == "viewer"
    assert SsoConnection.objects.get(organization=owner.org).client_secret_encrypted == before
    event = AuditEvent.objects.filter(action="sso.connection_updated").get()
    assert event.data["before"]["default_role"] == ""
    assert event.data["after"]["default_role"] == "viewer"
    assert event.data["client_secret_changed"] is False


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"client_secret": ""}, "client_secret", "blank"),
        ({"issuer": "not a url"}, "issuer", "valid URL"),
        ({"issuer": "http://idp.example.com"}, "issuer", "https"),
        ({"scopes": "email profile"}, "scopes", "openid"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method", ""),
        ({"default_role": "superuser"}, "default_role", ""),
    ],
)
def test_bad_input_is_422_with_field_errors(owner, discovery, body, field, message):
    response = _configure(owner, discovery, **body)

    assert response.status_code in (400, 422), response.content
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert field in errors
    assert message in " ".join(errors[field])
    assert not SsoConnection.objects.exists()


def test_issuer_whose_discovery_fails_or_names_another_issuer_is_refused(owner, discovery):
    missing = _configure(owner, discovery, issuer=f"{discovery.url}/nobody")
    assert missing.status_code == 422
    assert "could not read" in missing.json()["errors"]["issuer"][0]

    liar = discovery.issuer("liar", issuer="https://elsewhere.example.com")
    lying = _configure(owner, discovery, issuer=liar)
    assert lying.status_code == 422
    assert "names issuer" in lying.json()["errors"]["issuer"][0]
    assert not SsoConnection.objects.exists()


def test_a_new_connection_needs_its_secret(owner, discovery):
    response = owner.client.put(
        _url(owner.org),
        {"issuer": discovery.issuer("acme"), "client_id": "x"},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["errors"] == {"client_secret": ["This field is required."]}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_only_owners_see_or_change_sso(org, make_caller, discovery, role):
    caller = make_caller(org, role)
    for method, path in [
        ("get", ""),
        ("put", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "/domains"),
        ("post", "/domains"),
        ("get", "/group-mappings"),
        ("post", "/group-mappings"),
    ]:
        response = getattr(caller.client, method)(
            _url(org, path), {"domain": "x.example.com"}, format="json"
        )
        assert response.status_code == 403, (method, path, response.content)


def test_domain_is_verified_by_its_txt_record(owner, dns_zone: DnsZone):
    created = owner.client.post(
        _url(owner.org, "/domains"), {"domain": "Acme.Example.COM."}, format="json"
    )
    assert created.status_code == 201, created.content
    domain = created.json()
    assert domain["domain"] == "acme.example.com"
    assert domain["status"] == "pending"
    record = domain["verification"]
    assert record["type"] == "TXT"
    assert record["name"] == "_lakeplane-verification.acme.example.com"
    verify = _url(owner.org, f"/domains/{domain['id']}/verify")

    # Nothing published yet, then a wrong value: 422 saying what to publish.
    refused = owner.client.post(verify)
    assert refused.status_code == 422
    assert record["value"] in refused.json()["errors"]["domain"][0]
    dns_zone.txt[record["name"]] = ["v=spf1 -all", "lakeplane-verification=wrong"]
    assert owner.client.post(verify).status_code == 422

    dns_zone.txt[record["name"]].append(record["value"])
    verified = owner.client.post(verify)
    assert verified.status_code == 200, verified.content
    assert verified.json()["status"] == "verified"
    assert record["name"] in dns_zone.queries
    assert AuditEvent.objects.filter(action="sso.domain_verified").count() == 1


def test_a_domain_verified_by_one_org_cannot_be_taken_by_another(owner, make_caller, dns_zone):
    SsoDomain.objects.create(
        organization=OrganizationFactory(),
        domain="shared.example.com",
        verification_token="x",
        verified_at="2026-01-01T00:00:00Z",
    )
    response = owner.client.post(
        _url(owner.org, "/domains"), {"domain": "shared.example.com"}, format="json"
    )
    assert response.status_code == 409

    bad = owner.client.post(_url(owner.org, "/domains"), {"domain": "not_a domain"}, format="json")
    assert bad.status_code == 422
    assert "domain" in bad.json()["errors"]


def test_group_mappings(owner):
    created = owner.client.post(
        _url(owner.org, "/group-mappings"), {"group": "lp-admins", "role": "admin"}, format="json"
    )
    assert created.status_code == 201, created.content
    mapping_id = created.json()["id"]
    assert mapping_id.startswith("gmap_")
    duplicate = owner.client.post(
        _url(owner.org, "/group-mappings"), {"group": "lp-admins", "role": "viewer"}, format="json"
    )
    assert duplicate.status_code == 409
    bad = owner.client.post(
        _url(owner.org, "/group-mappings"), {"group": "x", "role": "root"}, format="json"
    )
    assert bad.status_code in (400, 422)
    assert "role" in bad.json()["errors"]

    changed = owner.client.patch(
        _url(owner.org, f"/group-mappings/{mapping_id}"), {"role": "member"}, format="json"
    )
    assert changed.json()["role"] == "member"
    listed = owner.client.get(_url(owner.org, "/group-mappings")).json()["results"]
    assert [(m["group"], m["role"]) for m in listed] == [("lp-admins", "member")]
    assert owner.client.delete(_url(owner.org, f"/group-mappings/{mapping_id}")).status_code == 204


def test_require_sso_needs_a_verified_domain_and_a_break_glass_owner(
    owner, make_caller, discovery, dns_zone
):
    _configure(owner, discovery)
    no_owner = owner.client.patch(_url(owner.org), {"require_sso": True}, format="json")
    assert no_owner.status_code == 422
    errors = no_owner.json()["errors"]
    assert set(errors) == {"break_glass_owner", "require_sso"}

    admin = make_caller(owner.org, Role.ADMIN)
    not_owner = owner.client.patch(
        _url(owner.org), {"break_glass_owner": admin.user.pk}, format="json"
    )
    assert not_owner.status_code == 422
    assert "break_glass_owner" in not_owner.json()["errors"]

    domain = SsoDomain.objects.create(
        organization=owner.org, domain="acme.example.com", verification_token="tok"
    )
    dns_zone.txt[domain.record_name] = [domain.record_value]
    owner.client.post(_url(owner.org, f"/domains/{domain.pk}/verify"))
    response = owner.client.patch(
        _url(owner.org), {"require_sso": True, "break_glass_owner": owner.user.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["require_sso"] is True
    assert response.json()["break_glass_owner"] == owner.user.pk
    policy = AuditEvent.objects.get(action="sso.policy_changed")
    assert policy.data["after"] == {"require_sso": True, "break_glass_owner": owner.user.pk}

    # While required, the last verified domain and the provider stay.
    assert owner.client.delete(_url(owner.org, f"/domains/{domain.pk}")).status_code == 409
    assert owner.client.delete(_url(owner.org)).status_code == 409


def test_require_sso_refuses_password_sessions_but_not_the_break_glass_owner(
    owner, make_caller, discovery, dns_zone
):
    _configure(owner, discovery)
    domain = SsoDomain.objects.create(
        organization=owner.org, domain="acme.example.com", verification_token="tok"
    )
    dns_zone.txt[domain.record_name] = [domain.record_value]
    owner.client.post(_url(owner.org, f"/domains/{domain.pk}/verify"))
    member = make_caller(owner.org, Role.MEMBER)
    robot = make_caller(owner.org, Role.MEMBER, via="token")
    owner.client.patch(
        _url(owner.org), {"require_sso": True, "break_glass_owner": owner.user.pk}, format="json"
    )

    refused = member.client.get(f"/api/v1/orgs/{owner.org.slug}/members")
    assert refused.status_code == 403
    assert "requires single sign-on" in refused.json()["detail"]
    assert owner.client.get(f"/api/v1/orgs/{owner.org.slug}/members").status_code == 200
    assert robot.client.get(f"/api/v1/orgs/{owner.org.slug}/members").status_code == 200


def _require_sso(owner: Any, discovery: DiscoveryServer, dns_zone: DnsZone) -> None:
    _configure(owner, discovery)
    domain = SsoDomain.objects.create(
        organization=owner.org, domain="acme.example.com", verification_token="tok"
    )
    dns_zone.txt[domain.record_name] = [domain.record_value]
    owner.client.post(_url(owner.org, f"/domains/{domain.pk}/verify"))
    response = owner.client.patch(
        _url(owner.org), {"require_sso": True, "break_glass_owner": owner.user.pk}, format="json"
    )
    assert response.status_code == 200, response.content


def test_the_password_form_refuses_whom_sso_binds(owner, discovery, dns_zone, client):
    _require_sso(owner, discovery, dns_zone)
    member = UserFactory()
    member.set_password("pw-member-123")
    member.save()
    MembershipFactory(organization=owner.org, user=member, role=Role.MEMBER)
    owner.user.set_password("pw-owner-123")
    owner.user.save()

    refused = client.post("/login/", {"username": member.email, "password": "pw-member-123"})
    assert refused.status_code == 200
    assert "requires single sign-on" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    # With a second organization that does not require SSO, the password still opens that one.
    MembershipFactory(organization=OrganizationFactory(), user=member, role=Role.MEMBER)
    allowed = client.post("/login/", {"username": member.email, "password": "pw-member-123"})
    assert allowed.status_code == 302
    assert client.get(f"/api/v1/orgs/{owner.org.slug}/members").status_code == 403

    # A wrong password still says so, and the break-glass owner gets in.
    client.logout()
    wrong = client.post("/login/", {"username": owner.user.email, "password": "nope"})
    assert "didn't match" in wrong.content.decode()
    glass = client.post("/login/", {"username": owner.user.email, "password": "pw-owner-123"})
    assert glass.status_code == 302
    assert client.get(f"/api/v1/orgs/{owner.org.slug}/members").status_code == 200


def test_a_break_glass_owner_who_is_no_longer_owner_is_bound_like_everyone(
    owner, make_caller, discovery, dns_zone, client
):
    make_caller(owner.org, Role.OWNER)
    _require_sso(owner, discovery, dns_zone)
    members = f"/api/v1/orgs/{owner.org.slug}/members"
    assert owner.client.get(members).status_code == 200

    # Demoted to admin (another owner remains): the exemption was for an owner, and ends.
    Membership.objects.filter(organization=owner.org, user=owner.user).update(role=Role.ADMIN)
    assert owner.client.get(members).status_code == 403
    owner.user.set_password("pw-owner-123")
    owner.user.save()
    refused = client.post("/login/", {"username": owner.user.email, "password": "pw-owner-123"})
    assert "requires single sign-on" in refused.content.decode()


def test_options_on_the_one_connection_is_an_answer_not_a_server_error(owner, discovery):
    # Found by schemathesis: DRF's OPTIONS metadata looked the singleton up by a missing pk.
    for _ in range(2):  # before and after a connection exists
        response = owner.client.options(_url(owner.org))
        assert response.status_code == 405
        assert response["Content-Type"].startswith("application/problem+json")
        _configure(owner, discovery)
