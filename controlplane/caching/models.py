"""Alluxio cache layers: a master and caching workers on their own node group.

A cache belongs to a compute plane and outlives the clusters that read through it: stopping or
deleting a cluster keeps the cache (and what it has cached) for the next one.
"""

from __future__ import annotations

from django.db import models

from controlplane.computeplanes.models import (
    ComputePlaneStatus,
    WorkloadResource,
    compute_plane_key,
)
from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import organization_key

# A cache goes through the compute plane's lifecycle, state for state, except that a drift check
# never marks it degraded: one enum, and the column offers its states but that one.
CacheStatus = ComputePlaneStatus
CACHE_STATES = [(v, label) for v, label in CacheStatus.choices if v != CacheStatus.DEGRADED]


class CacheMedium(models.TextChoices):
    MEM = "mem"
    SSD = "ssd"
    NVME = "nvme"


class Cache(WorkloadResource):
    id = PrefixedIdField("cache")
    organization = organization_key("caches")
    compute_plane = compute_plane_key("caches")
    version = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=CACHE_STATES, default=CacheStatus.PROVISIONING)
    worker_instance_type = models.CharField(max_length=32)
    workers = models.PositiveIntegerField()
    medium = models.CharField(max_length=4, choices=CacheMedium.choices)
    size_gb_per_worker = models.PositiveIntegerField()
    # [{"path": "/warehouse", "uri": "s3://bucket/warehouse"}, …]
    mounts = models.JSONField(default=list, blank=True)
    # {"preload": [...], "pin": [...], "ttl": [...], "write_back": bool} (contract.CachePolicies)
    policies = models.JSONField(default=dict, blank=True)
    # From the agent's status reports (besides the base's observed_*): counts only.
    master_ready = models.BooleanField(default=False)
    workers_ready = models.PositiveIntegerField(default=0)
    bytes_used = models.BigIntegerField(default=0)
    bytes_capacity = models.BigIntegerField(default=0)
    hit_ratio = models.FloatField(null=True, blank=True)
