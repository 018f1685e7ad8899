"""A token never acts above its creator's current role in the organization.

Demoting a member caps the tokens they created (the answer and the audit say which); and every
request, the lean operations-list path included, checks the creator's membership as it is now,
so a role changed or a membership removed by any other path (the admin, a script) takes effect
on the very next request.
"""

import pytest

from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.tenancy.models import ApiToken, Membership
from tests.factories import OperationFactory

pytestmark = pytest.mark.django_db


def _tokens(caller):
    return f"/api/v1/orgs/{caller.org.slug}/tokens"


def test_demoting_a_member_caps_their_tokens_and_says_so(org, owner, make_caller):
    admin = make_caller(org, Role.ADMIN, via="token")
    token = ApiToken.objects.get(created_by=admin.user)
    assert admin.client.get(_tokens(admin)).status_code == 200
    viewer_token = owner.client.post(
        f"/api/v1/orgs/{org.slug}/tokens", {"name": "mine", "role": "viewer"}, format="json"
    )
    assert viewer_token.status_code == 201

    response = owner.client.patch(
        f"/api/v1/orgs/{org.slug}/members/{admin.user.pk}", {"role": "member"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["role"] == "member"
    assert body["tokens_capped"] == [
        {
            "id": token.pk,
            "name": token.name,
            "prefix": token.prefix,
            "from": "admin",
            "to": "member",
        }
    ]
    token.refresh_from_db()
    assert token.role == Role.MEMBER
    event = AuditEvent.objects.get(organization=org, action="member.role_changed")
    assert event.data["tokens_capped"] == [token.pk]
    # The capped token is a member's now: tokens are an admin's business.
    assert admin.client.get(_tokens(admin)).status_code == 403
    # The owner's own viewer token was not the demoted member's: untouched.
    assert ApiToken.objects.get(pk=viewer_token.json()["id"]).role == Role.VIEWER


def test_promoting_a_member_does_not_raise_their_tokens(org, owner, make_caller):
    member = make_caller(org, Role.MEMBER, via="token")

    response = owner.client.patch(
        f"/api/v1/orgs/{org.slug}/members/{member.user.pk}", {"role": "admin"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["tokens_capped"] == []
    assert ApiToken.objects.get(created_by=member.user).role == Role.MEMBER


def test_a_role_lowered_elsewhere_caps_the_token_on_the_next_request(org, make_caller):
    admin = make_caller(org, Role.ADMIN, via="token")
    assert admin.client.get(_tokens(admin)).status_code == 200

    # Not through the service: the stored token still says admin.
    Membership.objects.filter(organization=org, user=admin.user).update(role=Role.VIEWER)

    assert admin.client.get(_tokens(admin)).status_code == 403
    me = admin.client.get("/api/v1/me").json()
    assert me["memberships"] == [{"org": org.slug, "role": "viewer"}]
    orgs = admin.client.get("/api/v1/orgs").json()["results"]
    assert [o["role"] for o in orgs] == ["viewer"]


def test_a_removed_membership_stops_the_token_on_every_path(org, make_caller):
    admin = make_caller(org, Role.ADMIN, via="token")
    OperationFactory(organization=org)
    operations = f"/api/v1/orgs/{org.slug}/operations"
    # The operations list's lean path (one statement that authenticates and reads) serves it.
    assert admin.client.get(operations, HTTP_ACCEPT="application/json").status_code == 200

    Membership.objects.filter(organization=org, user=admin.user).delete()

    for path in (operations, f"{operations}?limit=5", _tokens(admin), "/api/v1/me"):
        response = admin.client.get(path, HTTP_ACCEPT="application/json")
        assert response.status_code == 401, (path, response.content)
    assert "no longer a member" in admin.client.get(operations).json()["detail"]


def test_the_lean_path_answers_with_the_capped_role(org, make_caller, django_assert_num_queries):
    viewer_needed = make_caller(org, Role.ADMIN, via="token")
    OperationFactory(organization=org)
    operations = f"/api/v1/orgs/{org.slug}/operations"
    assert viewer_needed.client.get(operations).status_code == 200  # records the use
    Membership.objects.filter(organization=org, user=viewer_needed.user).update(role=Role.VIEWER)
    # A viewer may list operations: still served, by the lean path's single statement.
    with django_assert_num_queries(1):
        response = viewer_needed.client.get(operations, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1
