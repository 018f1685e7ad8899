"""The sweeper: remove Lakeplane-tagged resources whose compute plane is gone.

Runs from Celery beat. For every verified cloud account it lists the compute planes that own
tagged resources (read-only), and for each one that no longer exists, or was deleted, runs the
reconcilers' deletes in reverse order, after deleting its managed metastores' RDS databases
(an instance in the plane's subnets blocks their deletion). On a live plane, a metastore
database whose metastore row is deleted or missing is deleted too; a live one never is.
Deletes are idempotent and find resources by tag and deterministic name, so a partial sweep
simply continues next time; a delete that has to wait for AWS (a NAT gateway or a DB instance
still deleting) is picked up on the next run. What was removed is
written to the organization's audit log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

from django.conf import settings

from controlplane.catalogs.models import Metastore, MetastoreStatus
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
from controlplane.providers.aws.reconcilers.discovery import (
    owned_compute_planes,
    owned_metastore_databases,
)
from controlplane.providers.aws.reconcilers.rds import (
    MetastoreDatabaseReconciler,
    MetastoreDatabaseSpec,
)

logger = logging.getLogger(__name__)
# A compute plane created in the planner's dry run never owns anything, but never sweep it.
PROTECTED_IDS = {"cp_planned"}


@dataclass
class SweepReport:
    # cp id (or, for a deleted metastore's database on a live plane, ms id) → step summaries
    removed: dict[str, list[str]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # cp/ms id → why it waits
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
            databases = owned_metastore_databases(clients, account.organization_id)
        except AwsError as exc:
            report.errors[account.pk] = str(exc)
            continue
        for plane_id in sorted((owners | set(databases.values())) - live - PROTECTED_IDS):
            on_plane = sorted(m for m, p in databases.items() if p == plane_id)
            _remove(account, clients, region, plane_id, on_plane, report)
        on_live = {m: p for m, p in databases.items() if p in live}
        kept = _live_metastores(account, on_live)
        for metastore_id, plane_id in sorted(on_live.items()):
            if metastore_id not in kept:
                _remove_database(account, clients, region, plane_id, metastore_id, report)


def _live_metastores(account: CloudAccount, metastore_ids: Collection[str]) -> set[str]:
    """The ids whose metastore row exists and is not deleted (deleting is its workflow's job)."""
    return set(
        Metastore.objects.filter(
            pk__in=metastore_ids, organization_id=account.organization_id, deleted_at__isnull=True
        )
        .exclude(status=MetastoreStatus.DELETED)
        .values_list("pk", flat=True)
    )


def _context(
    account: CloudAccount, clients: object, region: str, plane_id: str
) -> ReconcileContext:
    return ReconcileContext(
        clients=clients,  # type: ignore[arg-type]
        owner=Ownership(org_id=account.organization_id, compute_plane_id=plane_id),
        spec=ComputePlaneSpec(name=plane_id, region=region),
    )


def _database_step(ctx: ReconcileContext, metastore_id: str) -> tuple[str, Callable[[], str]]:
    reconciler = MetastoreDatabaseReconciler(MetastoreDatabaseSpec(metastore_id=metastore_id))
    # Its own state: one metastore's final snapshot must not be reported as another's.
    return (
        f"{reconciler.name} {metastore_id}",
        lambda: reconciler.delete(replace(ctx, state={})),
    )


def _remove(
    account: CloudAccount,
    clients: object,
    region: str,
    plane_id: str,
    metastore_ids: list[str],
    report: SweepReport,
) -> None:
    ctx = _context(account, clients, region, plane_id)
    # The databases first: an RDS instance in the plane's subnets (and its security group,
    # which refers to the plane's) blocks the network's deletion.
    steps = [_database_step(ctx, m) for m in metastore_ids]
    steps += [(r.name, functools.partial(r.delete, ctx)) for r in reversed(RECONCILERS)]
    _run(account, region, ("computeplane", plane_id), steps, report)


def _remove_database(
    account: CloudAccount,
    clients: object,
    region: str,
    plane_id: str,
    metastore_id: str,
    report: SweepReport,
) -> None:
    ctx = _context(account, clients, region, plane_id)
    steps = [_database_step(ctx, metastore_id)]
    _run(account, region, ("metastore", metastore_id), steps, report, compute_plane=plane_id)


def _run(
    account: CloudAccount,
    region: str,
    target: tuple[str, str],
    steps: list[tuple[str, Callable[[], str]]],
    report: SweepReport,
    **data: str,
) -> None:
    """Run the deletes in order until one must wait; audit what was removed."""
    key = target[1]
    done: list[str] = []
    try:
        for name, delete in steps:
            done.append(f"{name}: {delete()}")
    except WaitFor as wait:
        report.pending[key] = wait.detail
    except (ReconcileError, AwsError) as exc:
        report.pending[key] = str(exc)
        logger.warning("sweeping %s in %s stopped: %s", key, account.pk, exc)
    if done:
        report.removed[key] = done
        audit.record(
            actor=Actor.system_actor("sweeper"),
            organization=account.organization,
            action="sweeper.removed_orphans",
            target=target,
            data={
                "cloud_account": account.pk,
                "region": region,
                **data,
                "removed": done,
                "pending": report.pending.get(key, ""),
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
