"""The autoscaling policy on the cluster, the organisation's worker quota, and scaling events.

The decision itself runs in the agent (``computeplane_agent.autoscale``); the control plane
validates the policy, carries it in the desired state and records every change of a cluster's
worker count as a :class:`ScalingEvent` (docs/autoscaling.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from computeplane_agent import contract
from controlplane.clusters.models import Cluster, ClusterStatus, ScalingEvent, ScalingSource
from controlplane.core.audit import Actor

# API name of a policy field -> the Cluster column holding it. The bounds are the cluster's own
# worker bounds: one min/max, whether a user or the autoscaler resizes.
POLICY_FIELDS = {
    "enabled": "autoscaling_enabled",
    "min_count": "workers_min",
    "max_count": "workers_max",
    "target_queued": "target_queued",
    "target_cpu_percent": "target_cpu_percent",
    "scale_out_window_seconds": "scale_out_window_seconds",
    "scale_in_idle_minutes": "scale_in_idle_minutes",
    "scale_out_step": "scale_out_step",
    "scale_in_step": "scale_in_step",
    "cooldown_seconds": "cooldown_seconds",
}
# Clusters whose workers do not count against the quota.
NOT_COUNTED = (
    ClusterStatus.STOPPED,
    ClusterStatus.SUSPENDED,
    ClusterStatus.DELETING,
    ClusterStatus.DELETED,
)


def org_worker_quota(organization_id: str) -> int:
    """The organisation's worker quota (one setting for every organisation for now)."""
    return int(settings.LAKEPLANE_ORG_WORKER_QUOTA)


def policy_of(cluster: Cluster) -> dict[str, Any]:
    return {name: getattr(cluster, column) for name, column in POLICY_FIELDS.items()}


def apply_policy(cluster: Cluster, policy: dict[str, Any]) -> dict[str, list[str]]:
    """Set the given policy fields on ``cluster`` (unsaved) and return field errors (422)."""
    for name, value in policy.items():
        setattr(cluster, POLICY_FIELDS[name], value)
    errors: dict[str, list[str]] = {}
    if "min_count" in policy or "max_count" in policy:
        if cluster.workers_min > cluster.workers_max:
            errors["autoscaling.min_count"] = [f"At most max_count ({cluster.workers_max})."]
        elif not cluster.workers_min <= cluster.workers_desired <= cluster.workers_max:
            field = "min_count" if "min_count" in policy else "max_count"
            errors[f"autoscaling.{field}"] = [
                f"The cluster has {cluster.workers_desired} workers now; the bounds must hold "
                "them (resize first)."
            ]
    for i, window in enumerate(cluster.schedules):
        if window["min_count"] > cluster.workers_max:
            errors[f"schedules.{i}.min_count"] = [f"At most max_count ({cluster.workers_max})."]
    if cluster.autoscaling_enabled:
        quota = org_worker_quota(cluster.organization_id)
        if cluster.workers_max > quota:
            errors["autoscaling.max_count"] = [
                f"At most the organization's worker quota ({quota})."
            ]
        if cluster.workers_max < 1:
            errors["autoscaling.max_count"] = ["At least 1."]
    return errors


def counted_workers(organization_id: str) -> int:
    """Workers the organisation's live clusters have asked for, over every compute plane."""
    total = (
        Cluster.objects.filter(organization_id=organization_id, deleted_at__isnull=True)
        .exclude(status__in=NOT_COUNTED)
        .aggregate(n=Sum("workers_desired"))["n"]
    )
    return int(total or 0)


def quota_left(cluster: Cluster, counted: int) -> int:
    """The most workers ``cluster`` may have under the quota, given ``counted`` for the org."""
    own = 0 if cluster.status in NOT_COUNTED else cluster.workers_desired
    return max(org_worker_quota(cluster.organization_id) - (counted - own), 0)


def org_time_zone(organization_id: str) -> str:
    """The time zone schedule windows are read in: UTC for every organisation for now (the
    organisation's own time zone lives in billing, which clusters may not import)."""
    return "UTC"


def autoscaling_spec(
    cluster: Cluster, counted: int, time_zone: str = "UTC"
) -> contract.AutoscalingSpec | None:
    """The policy as the agent reads it; None when the agent should leave the size alone."""
    if not cluster.autoscaling_enabled and cluster.auto_suspend_minutes is None:
        return None
    return contract.AutoscalingSpec(
        enabled=cluster.autoscaling_enabled,
        min_count=min(cluster.workers_min, cluster.workers_max),
        max_count=max(cluster.workers_max, 1),
        target_queued=cluster.target_queued,
        target_cpu=cluster.target_cpu_percent / 100,
        target_memory=cluster.target_cpu_percent / 100,
        scale_out_window_seconds=cluster.scale_out_window_seconds,
        scale_in_idle_minutes=cluster.scale_in_idle_minutes,
        scale_out_step=cluster.scale_out_step,
        scale_in_step=cluster.scale_in_step,
        cooldown_seconds=cluster.cooldown_seconds,
        auto_suspend_minutes=cluster.auto_suspend_minutes,
        worker_quota=min(quota_left(cluster, counted), contract.MAX_WORKERS),
        schedules=[contract.ScheduleWindow.model_validate(w) for w in cluster.schedules],
        time_zone=time_zone,
    )


def record_scaling_event(
    cluster: Cluster,
    *,
    from_count: int,
    to_count: int,
    reason: str,
    source: str,
    detail: str = "",
    actor: Actor | None = None,
    decision_id: str = "",
) -> ScalingEvent:
    return ScalingEvent.objects.create(
        cluster=cluster,
        organization_id=cluster.organization_id,
        at=timezone.now(),
        from_count=from_count,
        to_count=to_count,
        reason=reason,
        detail=detail[:500],
        source=source,
        actor=actor.user if actor is not None else None,
        decision_id=decision_id,
        operation_id=cluster.operation_id,
    )


def record_user_resize(cluster: Cluster, actor: Actor, from_count: int) -> ScalingEvent:
    return record_scaling_event(
        cluster,
        from_count=from_count,
        to_count=cluster.workers_desired,
        reason="user_resize",
        source=ScalingSource.USER,
        detail=f"resized by {actor.label}",
        actor=actor,
    )
