"""The cluster workflows: node groups in EKS, desired state to the agent, wait for its report.

``cluster.create``/``start``: node_groups → publish_desired_state → wait_for_agent.
``cluster.resize``: the same three (node group scaling and worker replicas change together).
``cluster.restart``: publish_desired_state (new restart_generation) → wait_for_agent.
``cluster.stop``: publish_desired_state (state stopped) → wait_for_agent → node_groups (to zero):
the agent drains the workers gracefully before their nodes go away. ``cluster.suspend`` (the
agent's idle auto-suspend) is the same and ends ``suspended``.
``cluster.delete``: publish_desired_state (without it) → wait_for_agent (gone, bounded) →
delete_node_groups.

Waiting holds no worker: ``wait_for_agent`` raises RetryLater until the agent's latest status
report (stored on the cluster by ``observed.py``) shows the published version applied and the
cluster in the state asked for.
"""

from __future__ import annotations

from typing import Any

from controlplane.agentapi.models import ObservedState
from controlplane.clusters import desired
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.clusters.observed import ABSENT
from controlplane.clusters.services import (
    CREATE_KIND,
    DELETE_KIND,
    DRAIN_KIND,
    RESIZE_KIND,
    RESTART_KIND,
    START_KIND,
    STOP_KIND,
    SUSPEND_KIND,
    record_event,
)
from controlplane.computeplanes.workflows import (
    AGENT_DELETE_WAIT_POLLS,
    AGENT_WAIT_SECONDS,
    plane_resource_loader,
    poll_delay,
    reconcile,
    wait_for_agent_again,
)
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    RetryLater,
    Step,
    register_resource_workflows,
    step_attempts,
)
from controlplane.providers.aws.reconcilers.nodegroup import (
    NodeGroupReconciler,
    cluster_node_groups,
)

_cluster = plane_resource_loader(Cluster)


def node_groups_of(cluster: Cluster) -> tuple[NodeGroupReconciler, NodeGroupReconciler]:
    running = cluster.status not in desired.STOPPED
    return cluster_node_groups(
        cluster_id=cluster.id,
        label=cluster.node_group,
        coordinator_instance_type=cluster.coordinator_instance_type,
        worker_instance_type=cluster.worker_instance_type,
        spot=cluster.spot,
        workers_min=cluster.workers_min,
        workers_max=cluster.workers_max,
        workers_desired=cluster.workers_desired,
        running=running,
    )


def ensure_node_groups(operation: Operation) -> str:
    cluster = _cluster(operation)
    groups = node_groups_of(cluster)
    details = [reconcile(cluster.compute_plane, g.ensure) for g in groups]
    nodes: dict[str, int] = {}
    spot_nodes: dict[str, int] = {}
    for group in groups:
        spec = group.spec
        if spec.desired_size:
            for kind in spec.instance_types:
                nodes[kind] = nodes.get(kind, 0) + spec.desired_size
                if spec.capacity_type == "SPOT":
                    spot_nodes[kind] = spot_nodes.get(kind, 0) + spec.desired_size
    last = cluster.events.order_by("-at", "-id").first()
    if last is None or (last.nodes, last.spot_nodes) != (nodes, spot_nodes):
        record_event(cluster, "nodes_changed", nodes=nodes, spot_nodes=spot_nodes)
    return "; ".join(details)


def delete_node_groups(operation: Operation) -> str:
    cluster = _cluster(operation)
    details = [reconcile(cluster.compute_plane, g.delete) for g in node_groups_of(cluster)]
    record_event(cluster, "nodes_changed", nodes={}, spot_nodes={})
    return "; ".join(details)


def publish(operation: Operation) -> str:
    published = desired.publish_carrying(_cluster(operation))
    return (
        f"desired state version {published.version} published ({len(published.clusters)} clusters)"
    )


def _wait_detail(cluster: Cluster) -> str:
    return (
        f"agent applied version {cluster.observed_version} of {cluster.desired_version}; "
        f"phase {cluster.observed_phase or 'unreported'}, coordinator "
        f"{'ready' if cluster.coordinator_ready else 'not ready'}, workers "
        f"{cluster.workers_ready}/{cluster.workers_desired} ready"
    )


def wait_for_agent(operation: Operation) -> str:
    cluster = _cluster(operation)
    applied = cluster.observed_version >= cluster.desired_version > 0
    if operation.kind == DELETE_KIND:
        if applied and cluster.observed_phase == ABSENT:
            return "the agent removed the cluster's objects"
        if step_attempts(operation, "wait_for_agent") >= AGENT_DELETE_WAIT_POLLS:
            return f"the agent did not confirm the removal ({_wait_detail(cluster)}); going on"
    elif operation.kind in (STOP_KIND, SUSPEND_KIND):
        if applied and cluster.observed_phase == "stopped":
            return "the agent reports the cluster stopped"
    elif (
        applied
        and cluster.observed_phase == "running"
        and cluster.coordinator_ready
        and cluster.workers_ready == cluster.workers_desired
    ):
        return f"coordinator and {cluster.workers_ready} workers ready"
    detail = _wait_detail(cluster)
    wait_for_agent_again(
        operation,
        detail,
        gave_up=None  # a delete goes on after AGENT_DELETE_WAIT_POLLS (above)
        if operation.kind == DELETE_KIND
        else f"The cluster did not reach the requested state in time: {detail}. Check the "
        "compute plane's agent and the node group's instances, then retry.",
    )


# A drain waits at most a long query's time (the contract's default max_query_minutes, 60),
# then ends anyway: the cluster stays out of routing either way.
DRAIN_WAIT_POLLS = 360


def _reported_gateway(cluster: Cluster) -> dict[str, Any] | None:
    document = (
        ObservedState.objects.filter(compute_plane_id=cluster.compute_plane_id)
        .values_list("document", flat=True)
        .first()
    )
    return (document or {}).get("gateway")


def wait_for_drained(operation: Operation) -> str:
    cluster = _cluster(operation)
    if cluster.operation_id != operation.id:
        return f"superseded by operation {cluster.operation_id}"
    if not cluster.draining:
        return "the drain was ended (draining set to false)"
    applied = cluster.observed_version >= cluster.desired_version > 0
    gateway = _reported_gateway(cluster)
    if applied and gateway is None:
        return "no gateway runs on the compute plane: nothing routes queries to the cluster"
    if applied and cluster.id in (gateway or {}).get("drained", []):
        return "the gateway reports no query running or queued on the cluster"
    if step_attempts(operation, "wait_for_drained") >= DRAIN_WAIT_POLLS:
        return "the gateway did not report the cluster empty in time; it stays out of routing"
    state = "applied" if applied else f"version {cluster.desired_version} not yet applied"
    raise RetryLater(
        f"waiting for the gateway to report the cluster empty ({state})",
        delay=poll_delay(AGENT_WAIT_SECONDS),
    )


NODE_GROUPS = Step("node_groups", ensure_node_groups)
PUBLISH = Step("publish_desired_state", publish)
WAIT = Step("wait_for_agent", wait_for_agent)

register_resource_workflows(
    Cluster,
    [
        (CREATE_KIND, [NODE_GROUPS, PUBLISH, WAIT], ClusterStatus.RUNNING),
        (RESIZE_KIND, [NODE_GROUPS, PUBLISH, WAIT], ClusterStatus.RUNNING),
        (START_KIND, [NODE_GROUPS, PUBLISH, WAIT], ClusterStatus.RUNNING),
        (RESTART_KIND, [PUBLISH, WAIT], ClusterStatus.RUNNING),
        (DRAIN_KIND, [PUBLISH, Step("wait_for_drained", wait_for_drained)], ClusterStatus.RUNNING),
        (STOP_KIND, [PUBLISH, WAIT, NODE_GROUPS], ClusterStatus.STOPPED),
        (SUSPEND_KIND, [PUBLISH, WAIT, NODE_GROUPS], ClusterStatus.SUSPENDED),
        (
            DELETE_KIND,
            [PUBLISH, WAIT, Step("delete_node_groups", delete_node_groups)],
            ClusterStatus.DELETED,
        ),
    ],
    failed=ClusterStatus.FAILED,
    # Each state change is a cluster event named after the state (billing reads them).
    then=lambda cluster: record_event(cluster, cluster.status),
)
