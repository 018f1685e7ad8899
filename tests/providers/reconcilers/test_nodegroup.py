"""The node group reconciler against the emulator: create, converge, scale, delete."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.providers.aws.reconcilers import eks
from controlplane.providers.aws.reconcilers.base import ReconcileError
from controlplane.providers.aws.reconcilers.nodegroup import (
    NODE_GROUP_LABEL,
    NodeGroupReconciler,
    cluster_node_groups,
)
from controlplane.sandbox.pytest_plugin import Sandbox
from tests.providers.reconcilers.test_platform_reconcilers import (
    Account,
    RecordingContext,
    new_owner,
    run_until_done,
)

CLUSTER_ID = "cl_0123456789abcdefghjkmnpqrs"
LABEL = "lakeplane-cl-0123456789abcdefghjkmnpqrs"


@pytest.fixture
def account(sandbox: Sandbox) -> Account:
    return Account(sandbox)


@pytest.fixture
def plane_ctx(account: Account) -> RecordingContext:
    """A compute plane's context with an ACTIVE EKS cluster, its subnets and node role."""
    ctx = account.ctx_for("eks", new_owner())
    run_until_done(lambda: eks.reconciler.ensure(ctx))
    assert ctx.state["node_role_arn"]
    assert ctx.state["private_subnet_ids"]
    return ctx


def groups(*, spot: bool = False, desired: int = 3, running: bool = True):
    return cluster_node_groups(
        cluster_id=CLUSTER_ID,
        label=LABEL,
        coordinator_instance_type="m6i.xlarge",
        worker_instance_type="r6i.2xlarge",
        spot=spot,
        workers_min=1,
        workers_max=10,
        workers_desired=desired,
        running=running,
    )


def describe(account: Account, ctx: RecordingContext, r: NodeGroupReconciler) -> dict[str, Any]:
    client = account.clients("eks")
    return client.describe_nodegroup(
        clusterName=ctx.state["eks_cluster_name"], nodegroupName=r.name
    )["nodegroup"]


def test_ensure_creates_both_node_groups_and_a_second_ensure_mutates_nothing(
    account: Account, plane_ctx: RecordingContext
) -> None:
    coordinator, workers = groups(spot=True)
    start = account.seq()
    for r in (coordinator, workers):
        run_until_done(lambda r=r: r.ensure(plane_ctx))
    assert account.mutating_since(start) == ["eks:CreateNodegroup", "eks:CreateNodegroup"]

    c, w = describe(account, plane_ctx, coordinator), describe(account, plane_ctx, workers)
    for group in (c, w):
        assert group["labels"][NODE_GROUP_LABEL] == LABEL
        assert group["taints"] == [
            {"key": NODE_GROUP_LABEL, "value": LABEL, "effect": "NO_SCHEDULE"}
        ]
        assert group["nodeRole"] == plane_ctx.state["node_role_arn"]
        assert sorted(group["subnets"]) == sorted(plane_ctx.state["private_subnet_ids"])
        assert group["tags"]["lakeplane:cluster"] == CLUSTER_ID
        assert plane_ctx.owner.owns(group["tags"])
    assert c["capacityType"] == "ON_DEMAND"
    assert w["capacityType"] == "SPOT"
    assert c["instanceTypes"] == ["m6i.xlarge"]
    assert w["instanceTypes"] == ["r6i.2xlarge"]
    assert c["scalingConfig"] == {"minSize": 1, "maxSize": 1, "desiredSize": 1}
    assert w["scalingConfig"] == {"minSize": 1, "maxSize": 10, "desiredSize": 3}

    start = account.seq()
    assert "ACTIVE" in coordinator.ensure(plane_ctx)
    assert "ACTIVE" in workers.ensure(plane_ctx)
    assert account.mutating_since(start) == []
    assert [a.action for a in workers.plan(plane_ctx)] == ["none"]


def test_scaling_changes_only_when_it_differs_and_stop_scales_to_zero(
    account: Account, plane_ctx: RecordingContext
) -> None:
    for r in groups():
        run_until_done(lambda r=r: r.ensure(plane_ctx))

    _, bigger = groups(desired=5)
    assert [a.action for a in bigger.plan(plane_ctx)] == ["update"]
    start = account.seq()
    run_until_done(lambda: bigger.ensure(plane_ctx))
    assert account.mutating_since(start) == ["eks:UpdateNodegroupConfig"]
    assert describe(account, plane_ctx, bigger)["scalingConfig"]["desiredSize"] == 5

    stopped = groups(desired=5, running=False)
    for r in stopped:
        run_until_done(lambda r=r: r.ensure(plane_ctx))
    assert describe(account, plane_ctx, stopped[0])["scalingConfig"] == {
        "minSize": 0,
        "maxSize": 1,
        "desiredSize": 0,
    }
    assert describe(account, plane_ctx, stopped[1])["scalingConfig"] == {
        "minSize": 0,
        "maxSize": 10,
        "desiredSize": 0,
    }
    start = account.seq()
    for r in stopped:
        r.ensure(plane_ctx)
    assert account.mutating_since(start) == []


def test_delete_removes_the_node_group_and_a_second_delete_is_a_no_op(
    account: Account, plane_ctx: RecordingContext
) -> None:
    coordinator, workers = groups()
    for r in (coordinator, workers):
        run_until_done(lambda r=r: r.ensure(plane_ctx))
    for r in (coordinator, workers):
        run_until_done(lambda r=r: r.delete(plane_ctx))
    listed = account.clients("eks").list_nodegroups(clusterName=plane_ctx.state["eks_cluster_name"])
    assert listed["nodegroups"] == []
    start = account.seq()
    assert "deleted" in workers.delete(plane_ctx)
    assert account.mutating_since(start) == []


def test_a_node_group_of_that_name_owned_by_another_cluster_is_a_conflict(
    account: Account, plane_ctx: RecordingContext
) -> None:
    coordinator, _ = groups()
    run_until_done(lambda: coordinator.ensure(plane_ctx))
    stranger = NodeGroupReconciler(
        coordinator.spec.__class__(**{**coordinator.spec.__dict__, "cluster_id": "cl_other"})
    )
    with pytest.raises(ReconcileError) as error:
        stranger.ensure(plane_ctx)
    assert error.value.code == "resource_conflict"
    # Its delete leaves the stranger's node group alone.
    stranger.delete(plane_ctx)
    assert describe(account, plane_ctx, coordinator)["status"] == "ACTIVE"


def test_missing_prerequisites_are_a_permanent_error(
    account: Account, plane_ctx: RecordingContext
) -> None:
    coordinator, _ = groups()
    ctx = account.ctx(plane_ctx.owner, eks_cluster_name=plane_ctx.state["eks_cluster_name"])
    with pytest.raises(ReconcileError) as error:
        coordinator.ensure(ctx)
    assert error.value.code == "missing_prerequisite"
