"""Role matrix, API token lifecycle and the last-owner rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.tenancy.models import ApiToken, Membership
from tests.factories import MembershipFactory, OperationFactory

pytestmark = pytest.mark.django_db

WRITE_CALLS = {
    # name: (method, path template, body, minimum role)
    "patch org": ("patch", "/api/v1/orgs/{org}", {"name": "Renamed"}, Role.ADMIN),
    "delete org": ("delete", "/api/v1/orgs/{org}", None, Role.OWNER),
    "invite member": (
        "post",
        "/api/v1/orgs/{org}/members",
        {"email": "new@example.com", "role": "viewer"},
        Role.ADMIN,
    ),
    "change member": ("patch", "/api/v1/orgs/{org}/members/{usr}", {"role": "viewer"}, Role.ADMIN),
    "remove member": ("delete", "/api/v1/orgs/{org}/members/{usr}", None, Role.ADMIN),
    "list tokens": ("get", "/api/v1/orgs/{org}/tokens", None, Role.ADMIN),
    "create token": (
        "post",
        "/api/v1/orgs/{org}/tokens",
        {"name": "ci", "role": "viewer"},
        Role.ADMIN,
    ),
    "retry operation": ("post", "/api/v1/orgs/{org}/operations/{op}/retry", None, Role.MEMBER),
}
READ_PATHS = [
    "/api/v1/orgs/{org}",
    "/api/v1/orgs/{org}/members",
    "/api/v1/orgs/{org}/operations",
    "/api/v1/orgs/{org}/audit-events",
]
RANK = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]


@pytest.mark.parametrize("via", ["session", "token"])
@pytest.mark.parametrize("role", RANK)
@pytest.mark.parametrize("call", list(WRITE_CALLS))
def test_role_matrix(call, role, via, org, make_caller):
    make_caller(org, Role.OWNER)  # keeps an owner around whatever the caller does
    caller = make_caller(org, role, via=via)
    target = MembershipFactory(organization=org, role=Role.MEMBER)
    op = OperationFactory(organization=org, status="succeeded")
    method, template, body, minimum = WRITE_CALLS[call]
    url = template.format(org=org.slug, usr=target.user_id, op=op.pk)
    audit_before = AuditEvent.objects.count()

    response = getattr(caller.client, method)(url, body, format="json")

    if RANK.index(role) < RANK.index(minimum):
        assert response.status_code == 403, response.content
        assert response.json()["status"] == 403
        assert AuditEvent.objects.count() == audit_before  # nothing was written
    else:
        # Allowed: whatever the outcome, it is not a permission refusal (the retry of a
        # succeeded operation is a 409 conflict, which proves the role check passed).
        assert response.status_code not in (401, 403, 404), response.content
        assert response.status_code < 500


@pytest.mark.parametrize("role", RANK)
def test_every_role_reads(role, org, make_caller):
    caller = make_caller(org, role)
    for template in READ_PATHS:
        assert caller.client.get(template.format(org=org.slug)).status_code == 200


def test_token_is_shown_once_and_stored_hashed(owner, org, token_client):
    created = owner.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "ci", "role": "member"}, format="json"
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    stored = ApiToken.objects.get(pk=created.json()["id"])
    assert secret not in {stored.digest, stored.prefix}
    assert secret.startswith(f"lpt_{stored.prefix}_")
    listing = owner.client.get(f"/api/v1/orgs/{org.slug}/tokens").json()["results"]
    assert all("token" not in row for row in listing)
    assert secret not in str(listing)

    client = token_client(secret)
    assert client.get(f"/api/v1/orgs/{org.slug}/operations").status_code == 200
    assert ApiToken.objects.get(pk=stored.pk).last_used_at is not None


def test_revoked_token_gets_401_at_once(owner, org, token_client):
    created = owner.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "ci", "role": "member"}, format="json"
    ).json()
    client = token_client(created["token"])
    assert client.get(f"/api/v1/orgs/{org.slug}/operations").status_code == 200
    revoked = owner.client.delete(f"/api/v1/orgs/{org.slug}/tokens/{created['id']}")
    assert revoked.status_code == 204
    response = client.get(f"/api/v1/orgs/{org.slug}/operations")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert "revoked" in response.json()["detail"]


def test_expired_token_gets_401(owner, org, token_client):
    created = owner.client.post(
        f"/api/v1/orgs/{org.slug}/tokens",
        {"name": "ci", "role": "member", "expires_in_days": 1},
        format="json",
    ).json()
    ApiToken.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = token_client(created["token"]).get(f"/api/v1/orgs/{org.slug}/operations")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer lpt_deadbeef_wrongsecret", "Bearer "],
)
def test_bad_credentials_get_401(header, org, client):
    response = client.get(f"/api/v1/orgs/{org.slug}/operations", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_get_401(org, client):
    response = client.get(f"/api/v1/orgs/{org.slug}/operations")
    assert response.status_code == 401


def test_token_cannot_outrank_its_creator(org, make_caller):
    admin = make_caller(org, Role.ADMIN)
    response = admin.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "x", "role": "owner"}, format="json"
    )
    assert response.status_code == 422
    assert "role" in response.json()["errors"]


def test_token_role_limits_what_it_can_do(org, make_caller):
    viewer_token = make_caller(org, Role.OWNER)  # the person is an owner …
    created = viewer_token.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "ro", "role": "viewer"}, format="json"
    ).json()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created['token']}")
    # … but the token is a viewer: it reads and cannot write.
    assert client.get(f"/api/v1/orgs/{org.slug}/members").status_code == 200
    response = client.patch(f"/api/v1/orgs/{org.slug}", {"name": "x"}, format="json")
    assert response.status_code == 403


def test_last_owner_cannot_be_removed_or_demoted(owner, org):
    url = f"/api/v1/orgs/{org.slug}/members/{owner.user.pk}"
    removed = owner.client.delete(url)
    assert removed.status_code == 409
    assert removed["Content-Type"] == "application/problem+json"
    demoted = owner.client.patch(url, {"role": "admin"}, format="json")
    assert demoted.status_code == 409
    assert Membership.objects.get(organization=org, user=owner.user).role == Role.OWNER


def test_owner_can_leave_when_another_owner_exists(owner, org, make_caller):
    make_caller(org, Role.OWNER)
    url = f"/api/v1/orgs/{org.slug}/members/{owner.user.pk}"
    assert owner.client.delete(url).status_code == 204


def test_removing_a_member_revokes_their_tokens(owner, org, make_caller):
    leaver = make_caller(org, Role.ADMIN, via="token")
    assert leaver.client.get(f"/api/v1/orgs/{org.slug}/members").status_code == 200
    response = owner.client.delete(f"/api/v1/orgs/{org.slug}/members/{leaver.user.pk}")
    assert response.status_code == 204
    assert leaver.client.get(f"/api/v1/orgs/{org.slug}/members").status_code == 401


def test_admin_cannot_grant_owner(org, make_caller):
    admin = make_caller(org, Role.ADMIN)
    response = admin.client.post(
        f"/api/v1/orgs/{org.slug}/members",
        {"email": "x@example.com", "role": "owner"},
        format="json",
    )
    assert response.status_code == 422


def test_invite_twice_is_409(owner, org):
    body = {"email": "Twice@Example.com", "role": "member"}
    assert (
        owner.client.post(f"/api/v1/orgs/{org.slug}/members", body, format="json").status_code
        == 201
    )
    again = owner.client.post(f"/api/v1/orgs/{org.slug}/members", body, format="json")
    assert again.status_code == 409


def test_create_org_makes_creator_owner_and_rejects_bad_slug(owner):
    created = owner.client.post("/api/v1/orgs", {"name": "Beta", "slug": "beta"}, format="json")
    assert created.status_code == 201
    assert created.json()["role"] == "owner"
    taken = owner.client.post("/api/v1/orgs", {"name": "Beta", "slug": "beta"}, format="json")
    assert taken.status_code == 422
    assert "slug" in taken.json()["errors"]
    bad = owner.client.post("/api/v1/orgs", {"name": "X", "slug": "Bad Slug!"}, format="json")
    assert bad.status_code == 400
    assert "slug" in bad.json()["errors"]


def test_writes_are_audited_with_actor_and_ip(owner, org):
    owner.client.patch(
        f"/api/v1/orgs/{org.slug}", {"name": "Renamed"}, format="json", REMOTE_ADDR="203.0.113.9"
    )
    events = owner.client.get(f"/api/v1/orgs/{org.slug}/audit-events").json()["results"]
    latest = events[0]
    assert latest["action"] == "organization.updated"
    assert latest["actor"]["user"] == owner.user.pk
    assert latest["source_ip"] == "203.0.113.9"
    assert latest["target"] == {"type": "organization", "id": org.pk}


def test_malformed_json_is_a_problem_not_a_500(owner, org):
    response = owner.client.generic(
        "PATCH", f"/api/v1/orgs/{org.slug}", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def test_compiled_token_lookup_matches_the_orm(owner, org):
    from django.forms.models import model_to_dict

    from controlplane.tenancy.authentication import _lookup

    created = owner.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "ci", "role": "member"}, format="json"
    ).json()
    expected = ApiToken.objects.select_related("organization", "created_by").get(pk=created["id"])
    found = _lookup.fetch(expected.prefix)
    assert found is not None
    assert model_to_dict(found) == model_to_dict(expected)
    assert model_to_dict(found.organization) == model_to_dict(expected.organization)
    assert model_to_dict(found.created_by) == model_to_dict(expected.created_by)
    assert found.expires_at == expected.expires_at
    assert found.created_at == expected.created_at
    assert _lookup.fetch("nosuchprefix") is None
