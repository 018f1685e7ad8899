"""Tokens expire: 90 days by default and at most, never without an owner's explicit say-so,
and a token cannot mint a token that lives longer or does more than itself."""

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.tenancy.models import ApiToken

pytestmark = pytest.mark.django_db


def _create(caller, **body):
    return caller.client.post(
        f"/api/v1/orgs/{caller.org.slug}/tokens",
        {"name": "ci", "role": "viewer", **body},
        format="json",
    )


def _days_left(response):
    expires_at = ApiToken.objects.get(pk=response.json()["id"]).expires_at
    return (expires_at - timezone.now()) / timedelta(days=1)


def test_the_default_lifetime_is_90_days(owner):
    response = _create(owner)
    assert response.status_code == 201
    assert 89.9 < _days_left(response) <= 90


def test_more_than_90_days_is_a_field_error(owner):
    response = _create(owner, expires_in_days=91)
    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert "expires_in_days" in response.json()["errors"]


def test_a_non_expiring_token_needs_the_owners_permission(org, owner):
    refused = _create(owner, expires_in_days=None)
    assert refused.status_code == 422, refused.content
    assert "expires_in_days" in refused.json()["errors"]
    assert not ApiToken.objects.filter(organization=org, expires_at__isnull=True).exists()

    allowed = owner.client.patch(
        f"/api/v1/orgs/{org.slug}", {"allow_non_expiring_tokens": True}, format="json"
    )
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["allow_non_expiring_tokens"] is True
    event = AuditEvent.objects.get(organization=org, action="organization.token_policy_changed")
    assert event.data == {"allow_non_expiring_tokens": True}

    response = _create(owner, expires_in_days=None)
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at is None


def test_only_an_owner_allows_non_expiring_tokens(org, make_caller):
    admin = make_caller(org, Role.ADMIN)
    response = admin.client.patch(
        f"/api/v1/orgs/{org.slug}", {"allow_non_expiring_tokens": True}, format="json"
    )
    assert response.status_code in (403, 422), response.content
    org.refresh_from_db()
    assert org.allow_non_expiring_tokens is False


def test_a_token_cannot_mint_a_longer_lived_or_stronger_token(org, make_caller):
    admin = make_caller(org, Role.ADMIN, via="token")  # its token lives 30 days

    longer = _create(admin, expires_in_days=60)
    assert longer.status_code == 422, longer.content
    assert "expires_in_days" in longer.json()["errors"]
    stronger = _create(admin, role="owner", expires_in_days=10)
    assert stronger.status_code == 422
    assert "role" in stronger.json()["errors"]

    shorter = _create(admin, role="admin", expires_in_days=10)
    assert shorter.status_code == 201


def test_a_non_expiring_token_mints_only_expiring_ones_unless_allowed(org, owner, token_client):
    org.allow_non_expiring_tokens = True
    org.save()
    immortal = _create(owner, role="admin", expires_in_days=None).json()["token"]
    org.allow_non_expiring_tokens = False
    org.save()
    owner.client = token_client(immortal)

    assert _create(owner, expires_in_days=None).status_code == 422
    assert _create(owner, expires_in_days=90).status_code == 201
