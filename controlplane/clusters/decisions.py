"""The agent's autoscaling decisions, as the control plane takes them.

The agent decided inside the VPC and has already set the worker Deployment; here the decision
is checked against what only the control plane knows (the policy as it stands now, the
cluster's bounds, the organisation's quota, an operation already under way), recorded as a
:class:`ScalingEvent`, and made real on the AWS side by the ordinary resize operation (node
group scaling, then the desired state with the new count, then the wait for the agent). The
answer tells the agent which count stands.

A report sent again (its answer was lost) finds its event by ``decision_id`` and gets the same
answer; nothing happens twice.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.clusters import services
from controlplane.clusters.models import Cluster, ClusterStatus, ScalingEvent, ScalingSource
from controlplane.clusters.scaling import counted_workers, quota_left, record_scaling_event
from controlplane.core.errors import Conflict


def _answer(
    report: contract.ScalingReport, accepted: bool, workers: int, message: str | None = None
) -> contract.ScalingAnswer:
    return contract.ScalingAnswer(
        report_id=report.report_id,
        cluster_id=report.cluster_id,
        accepted=accepted,
        workers=workers,
        message=message,
    )


def take_decision(compute_plane_id: str, report: contract.ScalingReport) -> contract.ScalingAnswer:
    with transaction.atomic():
        cluster = (
            Cluster.objects.select_for_update(of=("self",))
            .select_related("organization", "compute_plane__cloud_account")
            .filter(pk=report.cluster_id, compute_plane_id=compute_plane_id)
            .exclude(status__in=(ClusterStatus.DELETING, ClusterStatus.DELETED))
            .first()
        )
        if cluster is None:
            return _answer(report, False, 0, "No such cluster on this compute plane.")
        taken = ScalingEvent.objects.filter(cluster=cluster, decision_id=report.report_id).first()
        if taken is not None:
            return _answer(report, True, taken.to_count)
        current = cluster.workers_desired
        if report.action == "suspend":
            return _suspend(cluster, report)
        if not cluster.autoscaling_enabled:
            return _answer(report, False, current, "Autoscaling is off for this cluster.")
        if cluster.status != ClusterStatus.RUNNING:
            return _answer(report, False, current, f"The cluster is {cluster.status}.")
        ceiling = min(
            cluster.workers_max, quota_left(cluster, counted_workers(cluster.organization_id))
        )
        workers = min(max(report.to_count, cluster.workers_min), max(ceiling, cluster.workers_min))
        reason = report.reason if workers == report.to_count else "quota"
        if workers == current:
            return _answer(report, False, current, "Already at the bounds or the quota.")
        try:
            services.autoscale_cluster(cluster, workers)
        except Conflict as exc:
            # The plane cannot be changed now (account unusable, drift): keep the current size.
            return _answer(report, False, current, str(exc.detail))
        record_scaling_event(
            cluster,
            from_count=current,
            to_count=workers,
            reason=reason,
            source=ScalingSource.SCHEDULE if reason == "schedule" else ScalingSource.AUTOSCALER,
            detail=report.detail,
            decision_id=report.report_id,
        )
    return _answer(report, True, workers)


def _suspend(cluster: Cluster, report: contract.ScalingReport) -> contract.ScalingAnswer:
    """Idle auto-suspend: node groups to zero, configuration (and the worker count) kept."""
    current = cluster.workers_desired
    if cluster.auto_suspend_minutes is None:
        return _answer(report, False, current, "Auto-suspend is off for this cluster.")
    if cluster.status != ClusterStatus.RUNNING:
        return _answer(report, False, current, f"The cluster is {cluster.status}.")
    try:
        services.suspend_cluster(cluster)
    except Conflict as exc:
        return _answer(report, False, current, str(exc.detail))
    record_scaling_event(
        cluster,
        from_count=current,
        to_count=0,
        reason="idle_suspend",
        source=ScalingSource.AUTOSCALER,
        detail=report.detail,
        decision_id=report.report_id,
    )
    return _answer(report, True, 0)


def on_scaling_reported(
    sender: Any, *, compute_plane_id: str, report: contract.ScalingReport, **_: Any
) -> contract.ScalingAnswer:
    return take_decision(compute_plane_id, report)
