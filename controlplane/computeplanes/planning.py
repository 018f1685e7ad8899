"""Dry run: the ordered actions a create would take in the account now, changing nothing."""

from __future__ import annotations

from django.conf import settings

from controlplane.computeplanes.services import ComputePlaneRequest, validate_request
from controlplane.computeplanes.workflows import client_factory, plan
from controlplane.core.errors import LakeplaneError
from controlplane.providers.aws.credentials import AwsAccessDenied, AwsUnavailable
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
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
        spec=ComputePlaneSpec(
            name=request.name,
            region=request.region,
            vpc_cidr=request.vpc_cidr,
            availability_zones=request.availability_zones,
            kubernetes_version=request.kubernetes_version,
            endpoint_access=request.endpoint_access,  # type: ignore[arg-type]
            public_access_cidrs=tuple(request.public_access_cidrs),
            control_plane_logging=tuple(request.control_plane_logging),
            nat_mode=(request.nat_mode or settings.LAKEPLANE_NAT_MODE),  # type: ignore[arg-type]
            kms_key_arn=request.kms_key_arn or None,
        ),
    )
    try:
        return plan(ctx)
    except (AwsUnavailable, AwsAccessDenied, ReconcileError) as exc:
        raise CloudUnavailable(f"Could not read the account to plan: {exc}") from exc
