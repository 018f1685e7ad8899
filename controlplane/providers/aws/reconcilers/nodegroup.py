"""EKS managed node groups for one Presto/Trino cluster or one Alluxio cache.

A cluster gets two node groups under one node label value (``lakeplane.io/node-group=<label>``,
with the matching NoSchedule taint, so only that cluster's pods land there): ``coordinator``
(always ON_DEMAND — losing it to a spot reclaim kills every running query) and ``workers``
(ON_DEMAND or SPOT). Unlike the compute plane's reconcilers, one instance serves one node group
of one cluster, so it is built from a :class:`NodeGroupSpec` rather than the compute plane spec.

Discipline as in base.py: the name (``<label>-<role>``) is deterministic and unique within the
EKS cluster, so it is the lookup key; CreateNodegroup carries a client token derived from it;
ownership is checked on the owner's tag (``lakeplane:cluster`` or ``lakeplane:cache``);
CREATING/UPDATING/DELETING raise :class:`WaitFor`; only the scaling config is ever updated
(instance types, capacity type, labels and subnets are immutable on a managed node group) and
only when it differs, so a converged node group costs one DescribeNodegroup and nothing else.

Reads from state: ``eks_cluster_name``, ``private_subnet_ids``, ``node_role_arn``.
Records nothing: the name is derived from the owner, so there is no id to lose.

A cache gets one node group (:func:`cache_node_group`), ON_DEMAND: its workers hold the cached
data, and a spot reclaim would throw it away.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.awscall import aws_call
from controlplane.providers.aws.reconcilers.base import (
    CLUSTER_KEY,
    PlannedAction,
    ReconcileContext,
    ReconcileError,
    WaitFor,
)

KIND = "eks:nodegroup"
CACHE_KEY = "lakeplane:cache"
NODE_GROUP_LABEL = "lakeplane.io/node-group"
# A node group changes state within a few minutes; polling faster only spends API calls.
POLL_SECONDS = 20.0
_STILL_GOING = {"CREATING", "UPDATING"}
_BROKEN = {"CREATE_FAILED", "DELETE_FAILED"}

Role = Literal["coordinator", "workers", "system"]
CapacityType = Literal["ON_DEMAND", "SPOT"]


@dataclass(frozen=True)
class NodeGroupSpec:
    """One node group of one cluster (or cache), as the customer's settings ask for it."""

    # The owner's id, tagged under ``owner_key``: a cluster's, or a cache's (the name predates
    # caches and is kept so existing callers read the same).
    cluster_id: str
    label: str  # the value of the lakeplane.io/node-group label and taint
    role: Role
    instance_types: tuple[str, ...]
    capacity_type: CapacityType
    min_size: int
    max_size: int
    desired_size: int
    owner_key: str = CLUSTER_KEY
    # Only the compute plane's system node group (systemnodes.py) is untainted: it runs
    # Lakeplane's own pods, which carry no toleration.
    tainted: bool = True
    # The system node group has one name per EKS cluster; the others derive it from the label.
    group_name: str = ""

    @property
    def name(self) -> str:
        return self.group_name or f"{self.label}-{self.role}"

    def scaling(self) -> dict[str, int]:
        # EKS refuses maxSize 0; a stopped node group keeps its maximum and runs nothing.
        return {
            "minSize": self.min_size,
            "maxSize": max(self.max_size, 1),
            "desiredSize": self.desired_size,
        }


def _eks_cluster(ctx: ReconcileContext) -> str:
    name = ctx.state.get("eks_cluster_name")
    if not name:
        raise ReconcileError(
            "missing_prerequisite",
            "The compute plane has no EKS cluster recorded; wait until it is ready.",
        )
    return str(name)


def _describe(eks: Any, cluster: str, name: str) -> dict[str, Any] | None:
    try:
        group: dict[str, Any] = aws_call(
            "eks:DescribeNodegroup",
            eks.describe_nodegroup,
            tolerate={"ResourceNotFoundException"},
            clusterName=cluster,
            nodegroupName=name,
        )["nodegroup"]
    except ClientError:
        return None
    return group


def _owned(group: dict[str, Any], spec: NodeGroupSpec) -> bool:
    return dict(group.get("tags") or {}).get(spec.owner_key) == spec.cluster_id


def _scaling_differs(group: dict[str, Any], spec: NodeGroupSpec) -> bool:
    current = group.get("scalingConfig") or {}
    return {k: current.get(k) for k in ("minSize", "maxSize", "desiredSize")} != spec.scaling()


def _taints(spec: NodeGroupSpec) -> dict[str, Any]:
    """CreateNodegroup's ``taints`` argument, left out altogether for an untainted group."""
    if not spec.tainted:
        return {}
    return {"taints": [{"key": NODE_GROUP_LABEL, "value": spec.label, "effect": "NO_SCHEDULE"}]}


def _health(group: dict[str, Any]) -> str:
    issues = (group.get("health") or {}).get("issues") or []
    return "; ".join(f"{i.get('code', '')}: {i.get('message', '')}" for i in issues) or "none"


class NodeGroupReconciler:
    """ensure/delete one node group; ``name`` is the node group's name."""

    def __init__(self, spec: NodeGroupSpec) -> None:
        self.spec = spec
        self.name = spec.name

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        group = _describe(ctx.clients("eks"), _eks_cluster(ctx), self.spec.name)
        if group is None:
            return [PlannedAction("create", KIND, self.spec.name, self._summary())]
        if _scaling_differs(group, self.spec):
            return [PlannedAction("update", KIND, self.spec.name, self._summary())]
        return [PlannedAction("none", KIND, self.spec.name)]

    def _summary(self) -> str:
        s = self.spec
        return (
            f"{s.capacity_type} {','.join(s.instance_types)} "
            f"min {s.min_size} max {s.max_size} desired {s.desired_size}"
        )

    def ensure(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        cluster = _eks_cluster(ctx)
        name = self.spec.name
        group = _describe(eks, cluster, name)
        if group is None:
            group = self._create(ctx, eks, cluster)
        elif not _owned(group, self.spec):
            raise ReconcileError(
                "resource_conflict",
                f"A node group named {name} exists in {cluster} but is not tagged as "
                f"{self.spec.cluster_id}'s. Delete or rename it, then retry.",
            )
        status = group.get("status", "")
        if status in _STILL_GOING or status == "DELETING":
            raise WaitFor(f"node group {name} is {status}", delay=POLL_SECONDS)
        if status in _BROKEN:
            raise ReconcileError(
                "node_group_failed",
                f"Node group {name} is {status} (issues: {_health(group)}). Check the node "
                "role, the subnets' free addresses and the EC2 quota for the instance type, "
                "then retry.",
            )
        if _scaling_differs(group, self.spec):
            scaling = self.spec.scaling()
            digest = hashlib.sha256(json.dumps(scaling, sort_keys=True).encode()).hexdigest()
            aws_call(
                "eks:UpdateNodegroupConfig",
                eks.update_nodegroup_config,
                clusterName=cluster,
                nodegroupName=name,
                scalingConfig=scaling,
                clientRequestToken=ctx.owner.client_token(f"ng-{name}-{digest[:16]}"),
            )
            # EKS moves the group to UPDATING; the next call sees the new size or waits.
            raise WaitFor(f"node group {name}: scaling to {scaling}", delay=POLL_SECONDS)
        return f"node group {name} {status}: {self._summary()}"

    def _create(self, ctx: ReconcileContext, eks: Any, cluster: str) -> dict[str, Any]:
        subnets = ctx.state.get("private_subnet_ids") or []
        node_role = ctx.state.get("node_role_arn")
        if not subnets or not node_role:
            raise ReconcileError(
                "missing_prerequisite",
                f"Cannot create node group {self.spec.name}: the compute plane recorded no "
                "private subnets or node role. Retry once the compute plane is ready.",
            )
        s = self.spec
        try:
            created: dict[str, Any] = aws_call(
                "eks:CreateNodegroup",
                eks.create_nodegroup,
                tolerate={"ResourceInUseException"},
                clusterName=cluster,
                nodegroupName=s.name,
                nodeRole=node_role,
                subnets=list(subnets),
                instanceTypes=list(s.instance_types),
                capacityType=s.capacity_type,
                scalingConfig=s.scaling(),
                labels={NODE_GROUP_LABEL: s.label, "lakeplane.io/role": s.role},
                **_taints(s),
                tags=ctx.owner.tag_map(s.name, **{s.owner_key: s.cluster_id}),
                clientRequestToken=ctx.owner.client_token(f"ng-{s.name}"),
            )["nodegroup"]
        except ClientError:
            # Our own create whose answer was lost (ownership is checked by the caller).
            found = _describe(eks, cluster, s.name)
            if found is None:
                raise WaitFor(
                    f"node group {s.name} is being replaced", delay=POLL_SECONDS
                ) from None
            return found
        return created

    def delete(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        cluster = ctx.state.get("eks_cluster_name")
        name = self.spec.name
        if not cluster:
            return f"node group {name}: no EKS cluster, nothing to delete"
        group = _describe(eks, str(cluster), name)
        if group is None or not _owned(group, self.spec):
            return f"node group {name} deleted"
        if group.get("status") != "DELETING":
            try:
                aws_call(
                    "eks:DeleteNodegroup",
                    eks.delete_nodegroup,
                    tolerate={"ResourceNotFoundException"},
                    clusterName=cluster,
                    nodegroupName=name,
                )
            except ClientError:
                return f"node group {name} deleted"
        if _describe(eks, str(cluster), name) is not None:
            raise WaitFor(f"node group {name} is DELETING", delay=POLL_SECONDS)
        return f"node group {name} deleted"


def cluster_node_groups(
    *,
    cluster_id: str,
    label: str,
    coordinator_instance_type: str,
    worker_instance_type: str,
    spot: bool,
    workers_min: int,
    workers_max: int,
    workers_desired: int,
    running: bool,
) -> tuple[NodeGroupReconciler, NodeGroupReconciler]:
    """The coordinator's and the workers' node groups of one cluster (stopped: zero nodes)."""
    coordinator = NodeGroupSpec(
        cluster_id=cluster_id,
        label=label,
        role="coordinator",
        instance_types=(coordinator_instance_type,),
        capacity_type="ON_DEMAND",
        min_size=1 if running else 0,
        max_size=1,
        desired_size=1 if running else 0,
    )
    workers = NodeGroupSpec(
        cluster_id=cluster_id,
        label=label,
        role="workers",
        instance_types=(worker_instance_type,),
        capacity_type="SPOT" if spot else "ON_DEMAND",
        # The node group holds exactly the requested workers; min/max bound what resize allows.
        min_size=min(workers_min, workers_desired) if running else 0,
        max_size=workers_max,
        desired_size=workers_desired if running else 0,
    )
    return NodeGroupReconciler(coordinator), NodeGroupReconciler(workers)


def cache_node_group(
    *, cache_id: str, label: str, instance_type: str, workers: int
) -> NodeGroupReconciler:
    """The node group of one cache's workers: exactly ``workers`` on-demand nodes."""
    return NodeGroupReconciler(
        NodeGroupSpec(
            cluster_id=cache_id,
            owner_key=CACHE_KEY,
            label=label,
            role="workers",
            instance_types=(instance_type,),
            capacity_type="ON_DEMAND",
            min_size=workers,
            max_size=workers,
            desired_size=workers,
        )
    )
