"""The compute plane's ``system`` node group: where Lakeplane's own pods run.

Every cluster's and cache's node group is tainted so only its own pods land there; the agent and
the managed metastores carry no toleration, so without an untainted group they would never be
scheduled. This group carries the label ``lakeplane.io/node-group=system`` and no taint; the agent
pins its own pods to it with that label (``computeplane_agent.install.SYSTEM_NODE_SELECTOR``).

It reuses :class:`NodeGroupReconciler` (describe by name, create with a client token, wait while
CREATING, scale only when it differs), owned through the compute plane tag. The EKS cluster's name
is derived, not read from state, so the sweeper (which has no state) deletes it before the cluster.
"""

from __future__ import annotations

from dataclasses import replace

from computeplane_agent.install import SYSTEM_INSTANCE_TYPE, SYSTEM_NODE_GROUP
from controlplane.providers.aws.reconcilers.base import (
    COMPUTE_PLANE_KEY,
    PlannedAction,
    ReconcileContext,
)
from controlplane.providers.aws.reconcilers.eks import cluster_name
from controlplane.providers.aws.reconcilers.nodegroup import NodeGroupReconciler, NodeGroupSpec

# Two nodes (one per AZ from the private subnets) keep the agent schedulable through a node or AZ
# loss; three leaves room for a rolling node replacement.
SYSTEM_MIN, SYSTEM_DESIRED, SYSTEM_MAX = 1, 2, 3
GROUP_NAME = "lakeplane-system"


class SystemNodeGroupReconciler:
    name = "system_nodes"

    def _group(self, ctx: ReconcileContext) -> NodeGroupReconciler:
        return NodeGroupReconciler(
            NodeGroupSpec(
                cluster_id=ctx.owner.compute_plane_id,
                owner_key=COMPUTE_PLANE_KEY,
                label=SYSTEM_NODE_GROUP,
                role="system",
                # A spot reclaim would take the agent (and every metastore) down with it.
                capacity_type="ON_DEMAND",
                instance_types=(SYSTEM_INSTANCE_TYPE,),
                min_size=SYSTEM_MIN,
                desired_size=SYSTEM_DESIRED,
                max_size=SYSTEM_MAX,
                tainted=False,
                group_name=GROUP_NAME,
            )
        )

    def _ctx(self, ctx: ReconcileContext) -> ReconcileContext:
        # Same state object (node role, subnets), with the EKS cluster's deterministic name.
        if ctx.state.get("eks_cluster_name"):
            return ctx
        return replace(ctx, state={**ctx.state, "eks_cluster_name": cluster_name(ctx)})

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        return self._group(ctx).plan(self._ctx(ctx))

    def ensure(self, ctx: ReconcileContext) -> str:
        return self._group(ctx).ensure(ctx)

    def delete(self, ctx: ReconcileContext) -> str:
        return self._group(ctx).delete(self._ctx(ctx))


reconciler = SystemNodeGroupReconciler()
