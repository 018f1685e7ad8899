"""The cache workflows: the cache's node group in EKS, desired state to the agent, its report.

``cache.create``/``cache.update``: node_group (``workers`` on-demand nodes labelled and tainted
``lakeplane.io/node-group=<cache.node_group>``) → publish_desired_state → wait_for_agent (the
master ready and every worker ready, at the published version).
``cache.delete``: publish_desired_state (without it) → wait_for_agent (gone, bounded) →
delete_node_group.

Waiting holds no worker: ``wait_for_agent`` raises RetryLater until the agent's report says so.
"""

from __future__ import annotations

from controlplane.agentapi.models import ObservedState
from controlplane.caching.models import Cache, CacheStatus
from controlplane.caching.services import CREATE_KIND, DELETE_KIND, UPDATE_KIND
from controlplane.clusters.desired import publish_carrying
from controlplane.computeplanes.workflows import (
    AGENT_DELETE_WAIT_POLLS,
    plane_resource_loader,
    reconcile,
    wait_for_agent_again,
)
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    Step,
    register_resource_workflows,
    step_attempts,
)
from controlplane.providers.aws.reconcilers.nodegroup import (
    NodeGroupReconciler,
    cache_node_group,
)

_cache = plane_resource_loader(Cache)


def node_group_of(cache: Cache) -> NodeGroupReconciler:
    return cache_node_group(
        cache_id=cache.id,
        label=cache.node_group,
        instance_type=cache.worker_instance_type,
        workers=cache.workers,
    )


def ensure_node_group(operation: Operation) -> str:
    cache = _cache(operation)
    return reconcile(cache.compute_plane, node_group_of(cache).ensure)


def delete_node_group(operation: Operation) -> str:
    cache = _cache(operation)
    return reconcile(cache.compute_plane, node_group_of(cache).delete)


def publish(operation: Operation) -> str:
    published = publish_carrying(_cache(operation))
    return f"desired state version {published.version} published ({len(published.caches)} caches)"


def _wait_detail(cache: Cache) -> str:
    return (
        f"agent applied version {cache.observed_version} of {cache.desired_version}; "
        f"phase {cache.observed_phase or 'unreported'}, master "
        f"{'ready' if cache.master_ready else 'not ready'}, workers "
        f"{cache.workers_ready}/{cache.workers} ready"
    )


def _removed(cache: Cache) -> bool:
    """The plane's latest report applied the version without the cache and lists it no more."""
    observed = ObservedState.objects.filter(compute_plane_id=cache.compute_plane_id).first()
    if observed is None:
        return False
    document = observed.document
    applied = document.get("applied_version") or 0
    listed = {c.get("id") for c in document.get("caches") or []}
    return bool(applied >= cache.desired_version > 0 and cache.id not in listed)


def wait_for_agent(operation: Operation) -> str:
    cache = _cache(operation)
    if operation.kind == DELETE_KIND:
        if _removed(cache):
            return "the agent removed the cache's objects"
        if step_attempts(operation, "wait_for_agent") >= AGENT_DELETE_WAIT_POLLS:
            return "the agent did not confirm the removal; going on"
        wait_for_agent_again(operation, "waiting for the agent to remove the cache", gave_up=None)
    applied = cache.observed_version >= cache.desired_version > 0
    if (
        applied
        and cache.observed_phase == "running"
        and cache.master_ready
        and cache.workers_ready == cache.workers
    ):
        return f"master and {cache.workers_ready} workers ready"
    detail = _wait_detail(cache)
    wait_for_agent_again(
        operation,
        detail,
        gave_up=f"The cache did not become ready in time: {detail}. Check the compute plane's "
        "agent and the cache node group's instances, then retry.",
    )


NODE_GROUP = Step("node_group", ensure_node_group)
PUBLISH = Step("publish_desired_state", publish)
WAIT = Step("wait_for_agent", wait_for_agent)

register_resource_workflows(
    Cache,
    [
        (CREATE_KIND, [NODE_GROUP, PUBLISH, WAIT], CacheStatus.READY),
        (UPDATE_KIND, [NODE_GROUP, PUBLISH, WAIT], CacheStatus.READY),
        (
            DELETE_KIND,
            [PUBLISH, WAIT, Step("delete_node_group", delete_node_group)],
            CacheStatus.DELETED,
        ),
    ],
    failed=CacheStatus.FAILED,
)
