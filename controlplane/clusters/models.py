"""A Presto/Trino cluster on a compute plane, and the record of its state changes."""

from __future__ import annotations

from django.db import models

from controlplane.computeplanes.models import WorkloadResource, compute_plane_key
from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import organization_key


class ClusterStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    RUNNING = "running"
    RESIZING = "resizing"
    STOPPING = "stopping"
    STOPPED = "stopped"
    # Stopped by auto-suspend (no query for auto_suspend_minutes), not by a user: a query
    # through the gateway, or POST …/start, wakes it.
    SUSPENDED = "suspended"
    STARTING = "starting"
    RESTARTING = "restarting"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


class Engine(models.TextChoices):
    PRESTO = "presto"
    TRINO = "trino"


class Cluster(WorkloadResource):
    id = PrefixedIdField("cl")
    organization = organization_key("clusters")
    compute_plane = compute_plane_key("clusters")
    engine = models.CharField(max_length=8, choices=Engine.choices)
    version = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=ClusterStatus.choices, default=ClusterStatus.PROVISIONING
    )
    coordinator_instance_type = models.CharField(max_length=32)
    worker_instance_type = models.CharField(max_length=32)
    workers_desired = models.PositiveIntegerField()
    workers_min = models.PositiveIntegerField(default=1)
    workers_max = models.PositiveIntegerField()
    spot = models.BooleanField(default=False)
    auto_suspend_minutes = models.PositiveIntegerField(null=True, blank=True)
    # The Alluxio layer the cluster reads its object storage through; it outlives the cluster.
    cache = models.ForeignKey(
        "caching.Cache", null=True, blank=True, on_delete=models.PROTECT, related_name="clusters"
    )
    # Bumped by restart; the agent rolls every pod when it changes.
    restart_generation = models.PositiveIntegerField(default=0)
    # Set by ``POST …/drain``: the gateway sends the cluster no new queries and lets the running
    # ones finish; PATCH ``{"draining": false}`` (or a start) takes queries again.
    draining = models.BooleanField(default=False)
    # From the agent's latest status report (``observed.py``), besides the base's observed_*.
    coordinator_ready = models.BooleanField(default=False)
    workers_ready = models.PositiveIntegerField(default=0)
    # The autoscaling policy (docs/autoscaling.md); its bounds are workers_min/workers_max.
    # Off by default, so clusters made before autoscaling keep the size their users gave them.
    autoscaling_enabled = models.BooleanField(default=False)
    target_queued = models.PositiveIntegerField(default=0)
    target_cpu_percent = models.PositiveSmallIntegerField(default=80)
    scale_out_window_seconds = models.PositiveIntegerField(default=60)
    scale_in_idle_minutes = models.PositiveIntegerField(default=10)
    scale_out_step = models.PositiveIntegerField(default=2)
    scale_in_step = models.PositiveIntegerField(default=1)
    cooldown_seconds = models.PositiveIntegerField(default=300)
    # Schedule windows ({days, start, end, min_count}: contract.ScheduleWindow), read in the
    # organisation's time zone by the agent.
    schedules = models.JSONField(default=list, blank=True)


class ClusterEvent(models.Model):
    """One state change of a cluster and the nodes it runs from then on (billing reads these).

    ``nodes`` maps instance type to the node count the control plane has asked EKS for at
    ``at`` (coordinator and workers summed when they share a type); ``spot_nodes`` is the part of
    it on spot capacity. A cluster's node-hours are the integral of ``nodes`` over its events.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="events")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ClusterStatus.choices)
    reason = models.CharField(max_length=40)
    nodes = models.JSONField(default=dict)
    spot_nodes = models.JSONField(default=dict)
    operation = models.ForeignKey(
        "core.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["cluster", "at"]),
            models.Index(fields=["organization", "at"]),
        ]
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.status} at {self.at:%Y-%m-%dT%H:%M:%SZ}"


class ScalingSource(models.TextChoices):
    AUTOSCALER = "autoscaler"
    SCHEDULE = "schedule"
    USER = "user"


class ScalingEvent(models.Model):
    """One change of a cluster's worker count and why (``GET …/clusters/{id}/scaling-events``).

    ``decision_id`` is the agent's id for an autoscaler decision: a report sent again (a retry
    after a lost answer) finds its event and changes nothing.
    """

    id = PrefixedIdField("sev")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="scaling_events")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="+"
    )
    at = models.DateTimeField()
    from_count = models.PositiveIntegerField()
    to_count = models.PositiveIntegerField()
    reason = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=ScalingSource.choices)
    # Who asked: the user (user and schedule changes) or None for the agent.
    actor = models.ForeignKey(
        "tenancy.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_id = models.CharField(max_length=64, blank=True, default="")
    operation = models.ForeignKey(
        "core.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "decision_id"],
                condition=~models.Q(decision_id=""),
                name="uniq_scaling_decision",
            )
        ]
        indexes = [models.Index(fields=["cluster", "-id"])]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.from_count}->{self.to_count} {self.reason}"
