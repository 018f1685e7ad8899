"""Drift detection: notice when the cloud no longer matches what Lakeplane built.

Celery beat runs :func:`dispatch` (``check-drift``) every ``LAKEPLANE_DRIFT_TICK_SECONDS``; it
sends one check task for each cloud account and compute plane whose ``next_check_at`` has come,
and moves that time on by ``LAKEPLANE_DRIFT_INTERVAL_SECONDS``. A resource seen for the first
time is given a phase from its id (a stable hash) inside one interval, so the checks of all
tenants are spread evenly instead of arriving together after a deploy.

* A **cloud account** (verified or unusable) is checked with the verification's own read-only
  calls: the role is assumed with the external ID, refused without it, and holds the
  permissions Lakeplane needs. A failed check makes it ``unusable``: nothing is attempted with it
  (operations refuse with 409, the sweeper skips it) until a check or a verification passes.
* A **compute plane** (ready or degraded, no operation running) is inspected with a bounded
  number of read-only calls (``providers/aws/drift.py``): every resource its reconcilers
  recorded, and the node groups of its running clusters and ready caches. Findings make it
  ``degraded``; ``POST …/repair`` runs the reconcilers again.

Each verdict is stored with ``findings: [{check, detail}]`` and ``last_checked_at``; a change of
verdict writes an audit event. A later passing check clears the findings and the status.
AWS not answering is no verdict: the resource keeps its status and is checked next interval.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from controlplane.cloudaccounts.aws import aws_clients, verify_account
from controlplane.cloudaccounts.models import CloudAccount, CloudAccountStatus
from controlplane.computeplanes.models import ComputePlane, ComputePlaneStatus
from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.models import Operation
from controlplane.providers.aws.credentials import AwsUnavailable, session_name_for
from controlplane.providers.aws.drift import (
    CHECK_ROLE,
    ExpectedNodeGroup,
    Finding,
    Inspection,
    inspect_compute_plane,
)
from controlplane.providers.aws.reconcilers.base import Ownership
from controlplane.providers.aws.reconcilers.systemnodes import GROUP_NAME as SYSTEM_NODE_GROUP
from controlplane.providers.aws.verification import CHECK_ASSUME_WITH_EXTERNAL_ID

logger = logging.getLogger(__name__)
ACTOR = Actor.system_actor("drift")
CHECKED_ACCOUNT_STATUSES = (CloudAccountStatus.VERIFIED, CloudAccountStatus.UNUSABLE)
CHECKED_PLANE_STATUSES = (ComputePlaneStatus.READY, ComputePlaneStatus.DEGRADED)
CHECK_CLOUD_ACCOUNT = "cloud_account"


def phase_seconds(resource_id: str, interval: float) -> float:
    """Where in the interval ``resource_id`` is checked: stable, and uniform over many ids."""
    digest = int.from_bytes(hashlib.sha256(resource_id.encode()).digest()[:8], "big")
    return interval * digest / 2**64


def _due(
    model: type[models.Model], statuses: tuple[str, ...], now: datetime, limit: int
) -> list[str]:
    """Ids whose check is due; stamps the next time under a row lock (skip_locked: two beats
    or a slow tick never send the same check twice)."""
    interval = timedelta(seconds=float(settings.LAKEPLANE_DRIFT_INTERVAL_SECONDS))
    due: list[str] = []
    with transaction.atomic():
        rows = (
            model._default_manager.select_for_update(skip_locked=True)
            .filter(status__in=statuses)
            .filter(models.Q(next_check_at__isnull=True) | models.Q(next_check_at__lte=now))
            .order_by(models.F("next_check_at").asc(nulls_first=True))[:limit]
        )
        for row in rows:
            current = row.next_check_at  # type: ignore[attr-defined]
            if current is None:
                first = phase_seconds(str(row.pk), interval.total_seconds())
                row.next_check_at = now + timedelta(seconds=first)  # type: ignore[attr-defined]
            else:
                # Keep the plane's phase; after a long pause, start again from now.
                following = current + interval
                row.next_check_at = following if following > now else now + interval  # type: ignore[attr-defined]
                due.append(str(row.pk))
            row.save(update_fields=["next_check_at"])
    return due


@dataclass(frozen=True)
class Dispatched:
    accounts: list[str]
    planes: list[str]


def dispatch(
    now: datetime | None = None, send: Callable[[str, str], None] | None = None
) -> Dispatched:
    """Send the checks that are due (beat's ``check-drift``). ``send(kind, id)`` is the task
    sender (tasks.py passes Celery's; a test may run the checks inline)."""
    now = now or timezone.now()
    limit = int(settings.LAKEPLANE_DRIFT_BATCH)
    accounts = _due(CloudAccount, CHECKED_ACCOUNT_STATUSES, now, limit)
    planes = _due(ComputePlane, CHECKED_PLANE_STATUSES, now, limit)
    if send is not None:
        for account_id in accounts:
            send("account", account_id)
        for plane_id in planes:
            send("plane", plane_id)
    return Dispatched(accounts, planes)


# --- cloud accounts ---------------------------------------------------------------------------


def check_cloud_account(account_id: str) -> list[dict[str, str]] | None:
    """One drift check of an account; its findings (empty: all well), None without a verdict."""
    account = CloudAccount.objects.select_related("organization").filter(pk=account_id).first()
    if account is None or account.status not in CHECKED_ACCOUNT_STATUSES or not account.role_arn:
        return None
    try:
        result = verify_account(account)
    except AwsUnavailable as exc:
        logger.info("drift check of %s skipped: %s", account_id, exc)
        return None
    failed = [c for c in result.checks if not c.ok]
    if any(c.name == CHECK_ASSUME_WITH_EXTERNAL_ID for c in failed):
        # The permission checks could not run; saying so four times adds nothing.
        failed = [c for c in failed if c.name == CHECK_ASSUME_WITH_EXTERNAL_ID]
    findings = [{"check": c.name, "detail": c.detail} for c in failed]
    if findings:
        # Cached sessions of a role that stopped working must not be used meanwhile.
        aws_clients().forget(account.pk)
    _record_account(account.pk, findings, result.aws_calls)
    return findings


def _record_account(account_id: str, findings: list[dict[str, str]], aws_calls: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        account = (
            CloudAccount.objects.select_for_update()
            .select_related("organization")
            .filter(pk=account_id, status__in=CHECKED_ACCOUNT_STATUSES)
            .first()
        )
        if account is None:
            return  # re-verified, rotated or deleted meanwhile: that verdict counts
        before = (account.status, account.findings)
        account.last_checked_at = now
        account.findings = findings
        if findings:
            account.status = CloudAccountStatus.UNUSABLE
        elif account.status == CloudAccountStatus.UNUSABLE:
            account.status = CloudAccountStatus.VERIFIED
            account.verified_at = now
        account.save(update_fields=["status", "findings", "last_checked_at", "verified_at"])
        if (account.status, account.findings) != before:
            audit.record(
                actor=ACTOR,
                organization=account.organization,
                action="cloudaccount.unusable" if findings else "cloudaccount.usable_again",
                target=account,
                data={"findings": findings, "aws_calls": aws_calls},
            )


# --- compute planes ---------------------------------------------------------------------------


def expected_node_groups(plane: ComputePlane) -> list[ExpectedNodeGroup]:
    """The node groups that must exist now: the system one, each running cluster's two, each
    ready cache's one (stopped clusters keep theirs at zero, and starting one re-creates them)."""
    from controlplane.caching.models import Cache, CacheStatus
    from controlplane.clusters.models import Cluster, ClusterStatus

    groups = [ExpectedNodeGroup(SYSTEM_NODE_GROUP, "the compute plane (Lakeplane's own pods)")]
    clusters = Cluster.objects.filter(
        compute_plane=plane, status=ClusterStatus.RUNNING, deleted_at__isnull=True
    ).order_by("id")
    for cluster in clusters:
        for role in ("coordinator", "workers"):
            groups.append(
                ExpectedNodeGroup(
                    f"{cluster.node_group}-{role}", f"cluster {cluster.name} ({cluster.id})"
                )
            )
    for cache in Cache.objects.filter(compute_plane=plane, status=CacheStatus.READY).order_by("id"):
        groups.append(
            ExpectedNodeGroup(f"{cache.node_group}-workers", f"cache {cache.name} ({cache.id})")
        )
    return groups


def inspect(plane: ComputePlane) -> Inspection:
    """The read-only inspection of one plane (raises AwsUnavailable without a verdict)."""
    account = plane.cloud_account
    return inspect_compute_plane(
        aws_clients(),
        role_arn=account.role_arn,
        external_id=account.external_id,
        session_name=session_name_for(plane.organization.slug, "drift"),
        region=plane.region,
        owner=Ownership(org_id=plane.organization_id, compute_plane_id=plane.pk),
        state=dict(plane.resources),
        node_groups=expected_node_groups(plane),
        vendor_principal=settings.LAKEPLANE_VENDOR_PRINCIPAL or None,
    )


def _busy(plane: ComputePlane) -> bool:
    """An operation of the plane is under way: its resources are changing, not drifting."""
    return (
        plane.operation_id is not None
        and not Operation.objects.filter(
            pk=plane.operation_id, status__in=["succeeded", "failed", "canceled"]
        ).exists()
    )


def check_compute_plane(plane_id: str) -> list[dict[str, str]] | None:
    """One drift check of a plane; its findings (empty: all well), None without a verdict."""
    plane = (
        ComputePlane.objects.select_related("organization", "cloud_account")
        .filter(pk=plane_id, status__in=CHECKED_PLANE_STATUSES, deleted_at__isnull=True)
        .first()
    )
    if plane is None or _busy(plane):
        return None
    account = plane.cloud_account
    if account.status == CloudAccountStatus.UNUSABLE:
        # Nothing is attempted through an unusable account; the plane says why it is stuck.
        findings = [unusable_account_finding(account)]
        aws_calls = 0
    elif account.status != CloudAccountStatus.VERIFIED:
        return None
    else:
        try:
            inspection = inspect(plane)
        except AwsUnavailable as exc:
            logger.info("drift check of %s skipped: %s", plane_id, exc)
            return None
        findings = [f.as_dict() for f in inspection.findings]
        aws_calls = inspection.aws_calls
    record_plane_verdict(plane.pk, findings, aws_calls=aws_calls)
    return findings


def unusable_account_finding(account: CloudAccount) -> dict[str, str]:
    why = " ".join(f["detail"] for f in account.findings) or "its role no longer works."
    return {
        "check": CHECK_CLOUD_ACCOUNT,
        "detail": f"The cloud account {account.name} ({account.pk}) is unusable: {why}",
    }


def record_plane_verdict(plane_id: str, findings: list[dict[str, str]], *, aws_calls: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        plane = (
            ComputePlane.objects.select_for_update()
            .select_related("organization")
            .filter(pk=plane_id, status__in=CHECKED_PLANE_STATUSES)
            .first()
        )
        if plane is None or _busy(plane):
            return  # an operation started meanwhile: its outcome decides the status
        before = (plane.status, plane.findings)
        plane.last_checked_at = now
        plane.findings = findings
        plane.status = ComputePlaneStatus.DEGRADED if findings else ComputePlaneStatus.READY
        plane.save(update_fields=["status", "findings", "last_checked_at"])
        if (plane.status, plane.findings) != before:
            audit.record(
                actor=ACTOR,
                organization=plane.organization,
                action="computeplane.degraded" if findings else "computeplane.drift_cleared",
                target=plane,
                data={"findings": findings, "aws_calls": aws_calls},
            )


def reasons(findings: list[Any]) -> str:
    return " ".join(str(f.get("detail", "")) for f in findings if isinstance(f, dict))


__all__ = [
    "CHECK_CLOUD_ACCOUNT",
    "CHECK_ROLE",
    "Dispatched",
    "Finding",
    "check_cloud_account",
    "check_compute_plane",
    "dispatch",
    "expected_node_groups",
    "inspect",
    "phase_seconds",
    "reasons",
    "record_plane_verdict",
]
