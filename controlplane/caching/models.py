"""Alluxio cache layers: a master and caching workers on their own node group.

A cache belongs to a compute plane and outlives the clusters that read through it: stopping or
deleting a cluster keeps the cache (and what it has cached) for the next one.
"""

from __future__ import annotations

from django.db import models

from controlplane.core.ids import PrefixedIdField


class CacheStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    READY = "ready"
    UPDATING = "updating"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


class CacheMedium(models.TextChoices):
    MEM = "mem"
    SSD = "ssd"
    NVME = "nvme"


class Cache(models.Model):
    id = PrefixedIdField("cache")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="caches"
    )
    compute_plane = models.ForeignKey(
        "computeplanes.ComputePlane", on_delete=models.PROTECT, related_name="caches"
    )
    name = models.CharField(max_length=63)
    version = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=CacheStatus.choices, default=CacheStatus.PROVISIONING
    )
    worker_instance_type = models.CharField(max_length=32)
    workers = models.PositiveIntegerField()
    medium = models.CharField(max_length=4, choices=CacheMedium.choices)
    size_gb_per_worker = models.PositiveIntegerField()
    # [{"path": "/warehouse", "uri": "s3://bucket/warehouse"}, …]
    mounts = models.JSONField(default=list, blank=True)
    # {"preload": [...], "pin": [...], "ttl": [...], "write_back": bool} (contract.CachePolicies)
    policies = models.JSONField(default=dict, blank=True)
    # The desired-state version that last carried this cache's change (set when published);
    # the wait steps compare it with the version the agent says it applied.
    desired_version = models.PositiveIntegerField(default=0)
    # From the agent's status reports: counts only.
    observed_version = models.PositiveIntegerField(default=0)
    observed_phase = models.CharField(max_length=16, blank=True)
    master_ready = models.BooleanField(default=False)
    workers_ready = models.PositiveIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)
    bytes_capacity = models.BigIntegerField(default=0)
    hit_ratio = models.FloatField(null=True, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        "core.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="uniq_live_cache_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def node_group(self) -> str:
        """The node label value (and node group name prefix) of this cache's workers."""
        return f"lakeplane-{self.id}".replace("_", "-")
