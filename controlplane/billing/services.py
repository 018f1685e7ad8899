"""Billing's write services: what the API changes, audited in the same transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from controlplane.billing.models import BillingProfile
from controlplane.core import audit


def update_settings(
    *, actor: audit.Actor, organization: Any, profile: BillingProfile, changes: dict[str, Any]
) -> BillingProfile:
    """Apply validated changes to an organization's billing settings; audit what changed
    (never the marketplace registration token itself)."""
    with transaction.atomic():
        for name, value in changes.items():
            setattr(profile, name, value)
        profile.save()
        audit.record(
            actor=actor,
            organization=organization,
            action="billing.settings_changed",
            target=("organization", organization.pk),
            data={k: str(v) for k, v in changes.items()},
        )
    return profile
