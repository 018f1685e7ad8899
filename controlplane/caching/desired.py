"""The caches part of a compute plane's desired state.

``controlplane.clusters.desired.desired_state`` includes :func:`cache_specs`, so every publish
carries every live cache of the plane: a cluster's delete or stop never takes its cache away.
"""

from __future__ import annotations

from computeplane_agent import contract
from controlplane.caching.models import Cache, CacheStatus
from controlplane.computeplanes.models import ComputePlane

# Not in the desired state: the agent removes their objects.
GONE = (CacheStatus.DELETING, CacheStatus.DELETED)


def cache_spec(cache: Cache) -> contract.CacheSpec:
    return contract.CacheSpec(
        id=cache.id,
        name=cache.name,
        version=cache.version,
        node_group=cache.node_group,
        worker_instance_type=cache.worker_instance_type,
        workers=cache.workers,
        medium=cache.medium,
        size_gb_per_worker=cache.size_gb_per_worker,
        mounts=[contract.CacheMount(path=m["path"], uri=m["uri"]) for m in cache.mounts],
        policies=contract.CachePolicies.model_validate(cache.policies or {}),
    )


def cache_specs(plane: ComputePlane) -> list[contract.CacheSpec]:
    """Every live cache of ``plane``, in id order (one query)."""
    caches = (
        Cache.objects.filter(compute_plane_id=plane.pk, deleted_at__isnull=True)
        .exclude(status__in=GONE)
        .order_by("id")
    )
    return [cache_spec(c) for c in caches]
