"""The compute plane's desired state, built from every live cluster on it.

Each publish carries the whole compute plane (the agent prunes what is not listed), so whichever
cluster operation publishes last, the document is complete.
"""

from __future__ import annotations

from django.db import transaction

from computeplane_agent import contract
from controlplane.access.services import rules_for_cluster
from controlplane.agentapi.services import publish_desired_state
from controlplane.caching.desired import cache_specs
from controlplane.catalogs.desired import metastore_specs, plane_catalogs
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.clusters.scaling import autoscaling_spec, counted_workers, org_time_zone
from controlplane.computeplanes.models import ComputePlane, WorkloadResource
from controlplane.gateways.desired import gateway_spec

# Not in the desired state: the agent removes their objects.
GONE = (ClusterStatus.DELETING, ClusterStatus.DELETED)
STOPPED = (ClusterStatus.STOPPING, ClusterStatus.STOPPED, ClusterStatus.SUSPENDED)


def cluster_spec(
    cluster: Cluster,
    catalog_ids: list[str] | None = None,
    counted: int | None = None,
    time_zone: str | None = None,
) -> contract.ClusterSpec:
    """``counted``: the workers of the organisation's live clusters, ``time_zone`` its time
    zone (both read when not given and the cluster's policy needs them)."""
    if cluster.autoscaling_enabled or cluster.auto_suspend_minutes:
        if counted is None:
            counted = counted_workers(cluster.organization_id)
        if time_zone is None:
            time_zone = org_time_zone(cluster.organization_id)
    return contract.ClusterSpec(
        id=cluster.id,
        name=cluster.name,
        engine=cluster.engine,
        version=cluster.version,
        state="stopped" if cluster.status in STOPPED else "running",
        restart_generation=cluster.restart_generation,
        coordinator=contract.NodeSpec(instance_type=cluster.coordinator_instance_type),
        workers=contract.WorkerSpec(
            instance_type=cluster.worker_instance_type,
            replicas=cluster.workers_desired,
            spot=cluster.spot,
            max_replicas=max(cluster.workers_max, 1),
        ),
        node_group=cluster.node_group,
        catalogs=catalog_ids or [],
        cache=cluster.cache_id,
        draining=cluster.draining,
        autoscaling=autoscaling_spec(cluster, counted or 0, time_zone or "UTC"),
    )


def desired_state(plane: ComputePlane) -> contract.DesiredState:
    clusters = list(
        Cluster.objects.filter(compute_plane=plane, deleted_at__isnull=True)
        .exclude(status__in=GONE)
        .order_by("id")
    )
    catalogs, mounted = plane_catalogs(plane)
    caches = cache_specs(plane)
    served = {c.id for c in caches}
    counted = counted_workers(plane.organization_id)
    zone = org_time_zone(plane.organization_id)
    specs = [cluster_spec(c, mounted.get(c.id), counted, zone) for c in clusters]
    # A cache is only ever attached while it serves; should one be on its way out anyway, the
    # cluster reads storage directly rather than the whole document being refused.
    specs = [
        s if s.cache in served or s.cache is None else s.model_copy(update={"cache": None})
        for s in specs
    ]
    rules = rules_for_cluster([s.id for s in specs])
    specs = [
        s.model_copy(update={"access_rules": rules[s.id]}) if s.id in rules else s for s in specs
    ]
    return contract.DesiredState(
        compute_plane_id=plane.id,
        version=0,  # publish_desired_state assigns the next version
        vpc_cidr=plane.vpc_cidr,
        clusters=specs,
        metastores=metastore_specs(plane),
        catalogs=catalogs,
        caches=caches,
        gateway=gateway_spec(plane, clusters),
    )


def publish_carrying(resource: WorkloadResource) -> contract.DesiredState:
    """Publish ``resource``'s plane and record on it the version that carries its change (the
    wait steps compare it with the version the agent reports applied)."""
    with transaction.atomic():
        published = publish_plane(resource.compute_plane)
        type(resource)._default_manager.filter(pk=resource.pk).update(
            desired_version=published.version
        )
    return published


def publish_plane(plane: ComputePlane) -> contract.DesiredState:
    """Build the compute plane's whole desired state and publish it under the next version.

    Every writer that changes what should run on a plane (cluster workflows, catalog changes,
    metastores, caches) calls this once per plane, so one change costs one build and one publish
    however many clusters it reaches.
    """
    with transaction.atomic():
        return publish_desired_state(plane, desired_state(plane))
