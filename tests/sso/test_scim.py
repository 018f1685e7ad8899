"""SCIM 2.0 provisioning against a live server, driven by tests/sso/scim_client.py."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from controlplane.core.audit import Actor
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.sso.models import ScimUser
from controlplane.tenancy import services
from controlplane.tenancy.models import ApiToken, Membership, Organization, User
from tests.sso.scim_client import ScimClient, ScimFailure, operation, replace

pytestmark = pytest.mark.django_db(transaction=True)


def _org_with_scim(
    live_server: LiveServer, slug: str
) -> tuple[Organization, requests.Session, str]:
    org, _, issued = services.bootstrap(org_slug=slug, email=f"owner@{slug}.test")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {issued.secret}"
    base = f"{live_server.url}/api/v1/orgs/{slug}"
    for group, role in {"engineers": "member", "platform-admins": "admin"}.items():
        made = api.post(
            f"{base}/sso/group-mappings", json={"group": group, "role": role}, timeout=30
        )
        assert made.status_code == 201, made.text
    created = api.post(f"{base}/scim-tokens", json={"name": "okta"}, timeout=30)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("lps_")
    assert body["base_url"] == f"{live_server.url}/scim/v2"
    listed = api.get(f"{base}/scim-tokens", timeout=30).json()["results"]
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0]
    return org, api, body["token"]


@pytest.fixture
def acme(live_server: LiveServer) -> tuple[Organization, requests.Session, ScimClient]:
    org, api, token = _org_with_scim(live_server, "acme")
    return org, api, ScimClient(f"{live_server.url}/scim/v2", token)


def _role(org: Organization, email: str) -> str | None:
    membership = Membership.objects.filter(organization=org, user__email=email).first()
    return membership.role if membership else None


def test_users_and_groups_drive_membership(acme: Any) -> None:
    org, _, client = acme
    alice = client.create_user(
        "alice@acme.test",
        externalId="00u-alice",
        name={"givenName": "Alice", "familyName": "Analyst"},
        emails=[{"value": "alice@acme.test", "primary": True}],
    )
    assert alice["userName"] == "alice@acme.test"
    assert alice["active"] is True
    assert alice["name"] == {"givenName": "Alice", "familyName": "Analyst"}
    assert client.get_user(alice["id"]) == alice
    # Provisioned but in no mapped group (and no default role): not a member yet.
    assert _role(org, "alice@acme.test") is None
    assert User.objects.get(email="alice@acme.test").name == "Alice Analyst"

    engineers = client.create_group("engineers", [alice["id"]])
    assert [m["value"] for m in engineers["members"]] == [alice["id"]]
    assert _role(org, "alice@acme.test") == Role.MEMBER
    assert [g["display"] for g in client.get_user(alice["id"])["groups"]] == ["engineers"]

    admins = client.create_group("platform-admins")
    client.add_members(admins["id"], [alice["id"]])
    assert _role(org, "alice@acme.test") == Role.ADMIN
    user = User.objects.get(email="alice@acme.test")
    token = services.create_token(
        actor=Actor(user=user),
        organization=org,
        created_by=user,
        name="alice's script",
        role=Role.ADMIN,
        acting_role=Role.ADMIN,
        expires_in_days=7,
    ).token

    # Out of the admins group: back to member, her admin token capped with her.
    after = client.remove_member(admins["id"], alice["id"])
    assert after["members"] == []
    assert _role(org, "alice@acme.test") == Role.MEMBER
    token.refresh_from_db()
    assert token.role == Role.MEMBER

    # Deactivated the way Azure AD sends it (a capitalised op, a string boolean).
    off = client.patch_user(alice["id"], [{"op": "Replace", "path": "active", "value": "False"}])
    assert off["active"] is False
    assert _role(org, "alice@acme.test") is None
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(organization=org, action="scim.user_deactivated").count() == 1

    # Reactivated with a path-less replace (Okta's shape): her groups make her a member again.
    on = client.patch_user(alice["id"], [replace(None, {"active": True, "displayName": "Al"})])
    assert on["active"] is True
    assert on["displayName"] == "Al"
    assert _role(org, "alice@acme.test") == Role.MEMBER

    # A renamed group is matched by its new name: no mapping, no role.
    client.patch_group(engineers["id"], [replace("displayName", "eng")])
    assert _role(org, "alice@acme.test") is None
    client.patch_group(engineers["id"], [replace("displayName", "engineers")])
    assert _role(org, "alice@acme.test") == Role.MEMBER

    client.delete_group(engineers["id"])
    assert _role(org, "alice@acme.test") is None
    with pytest.raises(ScimFailure) as gone:
        client.get_group(engineers["id"])
    assert gone.value.status == 404


def test_filter_and_pages(acme: Any) -> None:
    _, _, client = acme
    ids = [client.create_user(f"user{i}@acme.test")["id"] for i in range(5)]

    found = client.find_user("USER3@acme.test")  # userName is case-insensitive (RFC 7643)
    assert found is not None
    assert found["id"] == ids[3]
    assert client.find_user("nobody@acme.test") is None

    first = client.list_users(start_index=1, count=2)
    assert first["totalResults"] == 5
    assert first["startIndex"] == 1
    assert [u["id"] for u in first["Resources"]] == ids[:2]
    last = client.list_users(start_index=5, count=2)
    assert [u["id"] for u in last["Resources"]] == ids[4:]
    assert client.list_users(count=0)["Resources"] == []

    client.create_group("engineers")
    assert client.list_groups(filter='displayName eq "engineers"')["totalResults"] == 1

    for bad in ['userName sw "user"', "userName eq user1", 'password eq "x"']:
        with pytest.raises(ScimFailure) as refused:
            client.list_users(filter=bad)
        assert refused.value.status == 400
        assert refused.value.scim_type == "invalidFilter"


def test_errors_have_the_rfc_7644_shape(acme: Any) -> None:
    _, _, client = acme
    alice = client.create_user("alice@acme.test")

    cases = [
        (lambda: client.create_user("alice@acme.test"), 409, "uniqueness"),
        (lambda: client.create_user("not-an-email"), 400, "invalidValue"),
        (
            lambda: client.request("POST", "/Users", {"userName": "x@acme.test"}),
            400,
            "invalidSyntax",
        ),
        (lambda: client.request("POST", "/Users", raw=b"{not json"), 400, "invalidSyntax"),
        (lambda: client.patch_user(alice["id"], [replace("password", "x")]), 400, "invalidPath"),
        (
            lambda: client.patch_user(alice["id"], [operation("remove", "userName")]),
            400,
            "mutability",
        ),
        (
            lambda: client.patch_user(alice["id"], [operation("move", "active")]),
            400,
            "invalidSyntax",
        ),
        (lambda: client.patch_user(alice["id"], [replace("active", "maybe")]), 400, "invalidValue"),
        (lambda: client.create_group("g", ["scimu_nobody"]), 400, "invalidValue"),
        (lambda: client.get_user("scimu_nobody"), 404, None),
    ]
    for call, status, scim_type in cases:
        with pytest.raises(ScimFailure) as failure:
            call()
        assert (failure.value.status, failure.value.scim_type) == (status, scim_type)
        assert failure.value.detail


def test_tokens_are_per_organization(live_server: LiveServer, acme: Any) -> None:
    _, api, client = acme
    alice = client.create_user("alice@acme.test")
    _, _, globex_token = _org_with_scim(live_server, "globex")
    globex = ScimClient(f"{live_server.url}/scim/v2", globex_token)

    for call in (
        lambda: globex.get_user(alice["id"]),
        lambda: globex.patch_user(alice["id"], [replace("active", False)]),
        lambda: globex.delete_user(alice["id"]),
    ):
        with pytest.raises(ScimFailure) as foreign:
            call()
        assert foreign.value.status == 404
    assert globex.list_users()["totalResults"] == 0
    assert client.get_user(alice["id"])["active"] is True

    for token in (None, "lps_nope_nope", "lpt_abc_def"):
        with pytest.raises(ScimFailure) as unauthenticated:
            ScimClient(f"{live_server.url}/scim/v2", token).list_users()
        assert unauthenticated.value.status == 401

    # Revoked through the API: refused at once.
    token_id = api.get(f"{live_server.url}/api/v1/orgs/acme/scim-tokens", timeout=30).json()[
        "results"
    ][0]["id"]
    revoked = api.delete(f"{live_server.url}/api/v1/orgs/acme/scim-tokens/{token_id}", timeout=30)
    assert revoked.status_code == 204
    with pytest.raises(ScimFailure) as refused:
        client.list_users()
    assert refused.value.status == 401


def test_delete_removes_the_member_but_not_the_account(acme: Any) -> None:
    org, _, client = acme
    alice = client.create_user("alice@acme.test")
    client.create_group("engineers", [alice["id"]])
    other = services.bootstrap(org_slug="elsewhere", email="alice@acme.test")[0]
    assert _role(org, "alice@acme.test") == Role.MEMBER

    client.delete_user(alice["id"])

    with pytest.raises(ScimFailure) as gone:
        client.get_user(alice["id"])
    assert gone.value.status == 404
    assert _role(org, "alice@acme.test") is None
    assert _role(other, "alice@acme.test") == Role.OWNER  # her other organization keeps her
    assert not ScimUser.objects.filter(organization=org).exists()
    assert client.get_group(client.list_groups()["Resources"][0]["id"])["members"] == []
    assert AuditEvent.objects.filter(organization=org, action="scim.user_deleted").count() == 1
    assert (
        ApiToken.objects.filter(organization=org, created_by__email="alice@acme.test").count() == 0
    )


def test_put_replaces_the_attributes(acme: Any) -> None:
    _, _, client = acme
    alice = client.create_user("alice@acme.test", externalId="x1", displayName="Alice")
    replaced = client.replace_user(alice["id"], "alice@acme.test", displayName="A. Analyst")
    assert replaced["displayName"] == "A. Analyst"
    assert "externalId" not in replaced


def test_service_provider_config(acme: Any) -> None:
    _, _, client = acme
    config = client.request("GET", "/ServiceProviderConfig")
    assert config["patch"] == {"supported": True}
    assert config["filter"]["supported"] is True
