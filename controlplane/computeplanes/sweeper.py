"""The sweeper: remove Lakeplane-tagged resources whose compute plane is gone.

Runs from Celery beat. For every verified cloud account it lists the compute planes that own
tagged resources (read-only), and for each one that no longer exists, or was deleted, runs the
reconcilers' deletes in reverse order. Deletes are idempotent and find resources by tag and
deterministic name, so a partial sweep simply continues next time; a delete that has to wait
for AWS (a NAT gateway still deleting) is picked up on the next run. What was removed is
written to the organization's audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings

from controlplane.cloudaccounts.models import CloudAccount, CloudAccountStatus
from controlplane.computeplanes.models import ComputePlane, ComputePlaneStatus
from controlplane.computeplanes.workflows import RECONCILERS, client_factory
from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.providers.aws.credentials import AwsError
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    ReconcileContext,
    ReconcileError,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.discovery import owned_compute_planes

logger = logging.getLogger(__name__)
# A compute plane created in the planner's dry run never owns anything, but never sweep it.
PROTECTED_IDS = {"cp_planned"}


@dataclass
class SweepReport:
    removed: dict[str, list[str]] = field(default_factory=dict)  # cp id → step summaries
    pending: dict[str, str] = field(default_factory=dict)  # cp id → why it waits
    errors: dict[str, str] = field(default_factory=dict)  # account id → error


def _regions(account: CloudAccount) -> set[str]:
    regions = set(
        ComputePlane.objects.filter(cloud_account=account).values_list("region", flat=True)
    )
    return regions | {settings.AWS_DEFAULT_REGION}


def sweep_account(account: CloudAccount, report: SweepReport) -> None:
    live = set(
        ComputePlane.objects.filter(cloud_account__aws_account_id=account.aws_account_id)
        .exclude(status=ComputePlaneStatus.DELETED)
        .values_list("pk", flat=True)
    )
    for region in sorted(_regions(account)):
        clients = client_factory(account, region, account.organization.slug)
        try:
            owners = owned_compute_planes(clients, account.organization_id)
        except AwsError as exc:
            report.errors[account.pk] = str(exc)
            continue
        for plane_id in sorted(owners - live - PROTECTED_IDS):
            _remove(account, clients, region, plane_id, report)


def _remove(
    account: CloudAccount, clients: object, region: str, plane_id: str, report: SweepReport
) -> None:
    ctx = ReconcileContext(
        clients=clients,  # type: ignore[arg-type]
        owner=Ownership(org_id=account.organization_id, compute_plane_id=plane_id),
        spec=ComputePlaneSpec(name=plane_id, region=region),
    )
    done: list[str] = []
    try:
        for reconciler in reversed(RECONCILERS):
            done.append(f"{reconciler.name}: {reconciler.delete(ctx)}")
    except WaitFor as wait:
        report.pending[plane_id] = wait.detail
    except (ReconcileError, AwsError) as exc:
        report.pending[plane_id] = str(exc)
        logger.warning("sweeping %s in %s stopped: %s", plane_id, account.pk, exc)
    if done:
        report.removed[plane_id] = done
        audit.record(
            actor=Actor.system_actor("sweeper"),
            organization=account.organization,
            action="sweeper.removed_orphans",
            target=("computeplane", plane_id),
            data={
                "cloud_account": account.pk,
                "region": region,
                "removed": done,
                "pending": report.pending.get(plane_id, ""),
            },
        )


def sweep() -> SweepReport:
    report = SweepReport()
    accounts = CloudAccount.objects.filter(status=CloudAccountStatus.VERIFIED).select_related(
        "organization"
    )
    for account in accounts:
        sweep_account(account, report)
    return report
