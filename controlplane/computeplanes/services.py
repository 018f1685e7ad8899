"""The write path for compute planes: create, plan (dry run), update, delete."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.dispatch import Signal

from controlplane.cloudaccounts.models import CloudAccount, CloudAccountStatus
from controlplane.computeplanes.models import ComputePlane, ComputePlaneStatus
from controlplane.core import audit, workflows
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput, NotFound
from controlplane.core.models import Operation
from controlplane.core.naming import ensure_name_free
from controlplane.tenancy.models import Organization

CREATE_KIND = "computeplane.create"
UPDATE_KIND = "computeplane.update"
DELETE_KIND = "computeplane.delete"
REPAIR_KIND = "computeplane.repair"

# Sent (inside the repair's final transaction) when a repair brought a plane back to ``ready``;
# the apps whose resources live on the plane listen and bring back what failed meanwhile.
# Arguments: ``plane``, ``actor``.
plane_repaired = Signal()

SUPPORTED_KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32")
DEFAULT_KUBERNETES_VERSION = "1.31"
# EKS needs room for two or three AZs of public and private subnets plus pods (VPC CNI).
MIN_PREFIX, MAX_PREFIX = 16, 20
# Fields a PATCH may change, and the reconciler that owns each.
MUTABLE_FIELDS = ("name", "public_access_cidrs", "control_plane_logging", "endpoint_access")
KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[0-9a-f-]{36}$"
)
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


@dataclass(frozen=True)
class ComputePlaneRequest:
    name: str
    cloud_account: CloudAccount
    region: str
    vpc_cidr: str
    availability_zones: int
    kubernetes_version: str
    endpoint_access: str
    public_access_cidrs: list[str]
    control_plane_logging: list[str]
    nat_mode: str = ""
    kms_key_arn: str = ""


def live_compute_plane(organization: Organization, plane_id: str) -> ComputePlane:
    """The organization's compute plane ``plane_id`` for a request body's ``compute_plane``.

    Another organization's plane answers exactly like a missing one (404), with the field named.
    """
    plane = ComputePlane.objects.filter(
        organization=organization, pk=plane_id, deleted_at__isnull=True
    ).first()
    if plane is None:
        raise NotFound(
            "No such compute plane.",
            errors={"compute_plane": [f"No compute plane {plane_id} here."]},
        )
    return plane


def _findings_text(findings: list[Any]) -> str:
    return " ".join(str(f.get("detail", "")) for f in findings if isinstance(f, dict))


def ensure_account_usable(account: CloudAccount, *, action: str) -> None:
    """409 at once when a drift check found the account's role unusable: nothing is attempted
    through it until a check or a verification passes again."""
    if account.status == CloudAccountStatus.UNUSABLE:
        why = _findings_text(account.findings) or "Its role no longer works."
        raise Conflict(
            f"The cloud account {account.pk} is unusable, so Lakeplane cannot {action}: {why} "
            f"Verify the cloud account again (POST …/cloud-accounts/{account.pk}/verify).",
            errors={"cloud_account": [f"Cloud account {account.pk} is unusable."]},
        )


def ensure_operable(plane: ComputePlane, *, action: str, allow_degraded: bool = False) -> None:
    """409 at once, naming the reason, when an operation would start on a plane whose account
    is unusable or (unless ``allow_degraded``) whose resources drifted — instead of failing
    deep inside a step."""
    ensure_account_usable(plane.cloud_account, action=action)
    if plane.status == ComputePlaneStatus.DEGRADED and not allow_degraded:
        raise Conflict(
            f"The compute plane {plane.pk} is degraded, so Lakeplane cannot {action}: "
            f"{_findings_text(plane.findings)} Repair it first "
            f"(POST …/compute-planes/{plane.pk}/repair).",
            errors={"compute_plane": [f"Compute plane {plane.pk} is degraded."]},
        )


def validate_request(request: ComputePlaneRequest) -> None:
    errors: dict[str, list[str]] = {}
    try:
        network = ipaddress.IPv4Network(request.vpc_cidr)
        if not network.is_private:
            errors["vpc_cidr"] = ["Use a private range (10/8, 172.16/12 or 192.168/16)."]
        elif not MIN_PREFIX <= network.prefixlen <= MAX_PREFIX:
            errors["vpc_cidr"] = [f"Use a /{MIN_PREFIX} to /{MAX_PREFIX} network."]
    except ValueError as exc:
        errors["vpc_cidr"] = [f"Not an IPv4 network: {exc}."]
    if request.kubernetes_version not in SUPPORTED_KUBERNETES_VERSIONS:
        errors["kubernetes_version"] = [
            f"Supported versions: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}."
        ]
    errors.update(_validate_access(request.endpoint_access, request.public_access_cidrs))
    if request.kms_key_arn:
        match = KMS_KEY_ARN_RE.match(request.kms_key_arn)
        if match is None:
            errors["kms_key_arn"] = ["Expected arn:aws:kms:<region>:<account>:key/<key id>."]
        elif (match["region"], match["account"]) != (
            request.region,
            request.cloud_account.aws_account_id,
        ):
            errors["kms_key_arn"] = [
                f"The key must be in {request.region} and account "
                f"{request.cloud_account.aws_account_id}."
            ]
    if request.cloud_account.status == CloudAccountStatus.UNUSABLE:
        errors["cloud_account"] = [
            "The cloud account is unusable: "
            f"{_findings_text(request.cloud_account.findings)} Verify it again first."
        ]
    elif request.cloud_account.status != CloudAccountStatus.VERIFIED:
        errors["cloud_account"] = [
            f"The cloud account is {request.cloud_account.status}; verify it first."
        ]
    if errors:
        raise InvalidInput("The compute plane cannot be built as requested.", errors=errors)


def _validate_access(endpoint_access: str, cidrs: list[str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if endpoint_access == "private" and cidrs:
        errors["public_access_cidrs"] = [
            "A private endpoint takes no public CIDRs; use endpoint_access=public_and_private."
        ]
    for cidr in cidrs:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            errors.setdefault("public_access_cidrs", []).append(f"{cidr} is not a CIDR.")
            continue
        if network.prefixlen == 0:
            errors.setdefault("public_access_cidrs", []).append(
                "0.0.0.0/0 opens the Kubernetes API to the internet; list your networks."
            )
    return errors


def lock_plane_for_new(
    model: type[models.Model],
    organization: Organization,
    name: str,
    plane: ComputePlane,
    *,
    needs_ready: str | None,
) -> ComputePlane:
    """The create path's preamble of a resource on a compute plane, inside the caller's
    transaction: the plane row locked (a concurrent delete of the plane waits for this create),
    ready when ``needs_ready`` (the reason, for the 409) says it must be, and the name free."""
    locked = ComputePlane.objects.select_for_update().get(pk=plane.pk)
    if needs_ready is not None:
        # Drift first: "degraded" alone would not say what to do about it.
        ensure_operable(locked, action=f"create a {model._meta.verbose_name} on it")
    if needs_ready is not None and locked.status != ComputePlaneStatus.READY:
        raise Conflict(
            f"The compute plane is {locked.status}; {needs_ready}.",
            errors={"compute_plane": [f"Compute plane {locked.id} is {locked.status}."]},
        )
    ensure_name_free(model, organization.pk, name)
    return locked


def unsaved_plane(organization: Organization, request: ComputePlaneRequest) -> ComputePlane:
    """The compute plane a request describes, not yet saved (create saves it; a dry run plans
    from it, so both read the request the same way)."""
    return ComputePlane(
        organization=organization,
        cloud_account=request.cloud_account,
        name=request.name,
        region=request.region,
        vpc_cidr=request.vpc_cidr,
        availability_zones=request.availability_zones,
        kubernetes_version=request.kubernetes_version,
        endpoint_access=request.endpoint_access,
        public_access_cidrs=request.public_access_cidrs,
        control_plane_logging=request.control_plane_logging,
        nat_mode=request.nat_mode or settings.LAKEPLANE_NAT_MODE,
        kms_key_arn=request.kms_key_arn,
    )


def create_compute_plane(
    *, actor: Actor, organization: Organization, request: ComputePlaneRequest
) -> tuple[ComputePlane, Operation]:
    validate_request(request)
    with transaction.atomic():
        ensure_name_free(ComputePlane, organization.pk, request.name)
        plane = unsaved_plane(organization, request)
        plane.save()
        operation = workflows.start_resource_operation(
            actor=actor,
            resource=plane,
            kind=CREATE_KIND,
            action="computeplane.created",
            data={"name": plane.name, "region": plane.region},
        )
    return plane, operation


def update_compute_plane(
    *, actor: Actor, plane: ComputePlane, changes: dict[str, Any]
) -> tuple[ComputePlane, Operation | None]:
    """Rename in place; settings that live in AWS go through an update operation."""
    with transaction.atomic():
        locked = ComputePlane.objects.select_for_update().get(pk=plane.pk)
        if changes.get("name", locked.name) != locked.name:
            ensure_name_free(
                ComputePlane, locked.organization_id, changes["name"], exclude=locked.pk
            )
        cloud_changes = {
            k: v for k, v in changes.items() if k != "name" and getattr(locked, k) != v
        }
        if cloud_changes:
            ensure_operable(locked, action="change the compute plane")
        if cloud_changes and locked.status != ComputePlaneStatus.READY:
            raise Conflict(f"The compute plane is {locked.status}; wait until it is ready.")
        access = cloud_changes.get("endpoint_access", locked.endpoint_access)
        cidrs = cloud_changes.get("public_access_cidrs", locked.public_access_cidrs)
        errors = _validate_access(access, cidrs)
        if errors:
            raise InvalidInput("The change cannot be applied.", errors=errors)
        for key, value in changes.items():
            setattr(locked, key, value)
        operation = None
        if cloud_changes:
            locked.status = ComputePlaneStatus.UPDATING
            operation = workflows.start_operation(
                actor=actor,
                organization=locked.organization,
                kind=UPDATE_KIND,
                target=locked,
                params={"changed": sorted(cloud_changes)},
            )
            locked.operation = operation
        locked.save()
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="computeplane.updated",
            target=locked,
            data={"changed": sorted(changes)},
        )
    return locked, operation


def delete_compute_plane(*, actor: Actor, plane: ComputePlane) -> tuple[ComputePlane, Operation]:
    with transaction.atomic():
        locked = ComputePlane.objects.select_for_update().get(pk=plane.pk)
        if locked.status in (ComputePlaneStatus.DELETING, ComputePlaneStatus.DELETED):
            raise Conflict(f"The compute plane is already {locked.status}.")
        # Teardown treats what is already gone as deleted, so a degraded plane may go.
        ensure_operable(locked, action="delete the compute plane", allow_degraded=True)
        blockers = _dependents(locked)
        if blockers:
            raise Conflict(
                f"The compute plane still has {blockers}; delete them first.",
            )
        if locked.operation is not None and not locked.operation.is_terminal:
            # A running create is stopped where it is; the delete cleans up what exists.
            Operation.objects.filter(pk=locked.operation_id).update(status="canceled")
        locked.status = ComputePlaneStatus.DELETING
        operation = workflows.start_operation(
            actor=actor, organization=locked.organization, kind=DELETE_KIND, target=locked
        )
        locked.operation = operation
        locked.save(update_fields=["status", "operation"])
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="computeplane.delete_requested",
            target=locked,
            data={"operation": operation.id},
        )
    return locked, operation


def repair_compute_plane(*, actor: Actor, plane: ComputePlane) -> tuple[ComputePlane, Operation]:
    """Run the reconcilers again (they create what is missing), bring the plane's clusters'
    node groups and agent back, and check again; the plane is ready when nothing is missing."""
    with transaction.atomic():
        locked = (
            ComputePlane.objects.select_for_update(of=("self",))
            .select_related("cloud_account", "organization")
            .get(pk=plane.pk)
        )
        if locked.status not in (ComputePlaneStatus.DEGRADED, ComputePlaneStatus.READY):
            raise Conflict(
                f"The compute plane is {locked.status}; repair applies to a ready or degraded "
                "plane (retry a failed operation instead).",
            )
        ensure_account_usable(locked.cloud_account, action="repair the compute plane")
        locked.status = ComputePlaneStatus.UPDATING
        operation = workflows.start_operation(
            actor=actor, organization=locked.organization, kind=REPAIR_KIND, target=locked
        )
        locked.operation = operation
        locked.save(update_fields=["status", "operation"])
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="computeplane.repair_requested",
            target=locked,
            data={"operation": operation.id, "findings": locked.findings},
        )
    return locked, operation


def _dependents(plane: ComputePlane) -> str:
    """What still runs on the compute plane (clusters, metastores, caches), in words."""
    counts = []
    for relation in ("clusters", "metastores", "caches"):
        manager = getattr(plane, relation, None)
        if manager is not None:
            live = manager.exclude(status="deleted").count()
            if live:
                counts.append(f"{live} {relation}")
    return ", ".join(counts)
