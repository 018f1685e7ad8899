"""Dry run: the ordered actions a create would take in the account now, changing nothing."""

from __future__ import annotations

from controlplane.computeplanes.services import (
    ComputePlaneRequest,
    unsaved_plane,
    validate_request,
)
from controlplane.computeplanes.workflows import client_factory, plan, spec_of
from controlplane.core.errors import LakeplaneError
from controlplane.providers.aws.credentials import AwsAccessDenied, AwsUnavailable
from controlplane.providers.aws.reconcilers.base import (
    Ownership,
    ReconcileContext,
    ReconcileError,
)
from controlplane.tenancy.models import Organization

PLANNED_ID = "cp_planned"


class CloudUnavailable(LakeplaneError):
    status_code = 503
    code = "cloud-unavailable"
    title = "AWS unavailable"


def plan_compute_plane(
    *, organization: Organization, request: ComputePlaneRequest
) -> list[dict[str, str]]:
    validate_request(request)
    ctx = ReconcileContext(
        clients=client_factory(request.cloud_account, request.region, organization.slug),
        owner=Ownership(org_id=organization.pk, compute_plane_id=PLANNED_ID),
        spec=spec_of(unsaved_plane(organization, request)),
    )
    try:
        return plan(ctx)
    except (AwsUnavailable, AwsAccessDenied, ReconcileError) as exc:
        raise CloudUnavailable(f"Could not read the account to plan: {exc}") from exc
