"""The system node group and the agent's EKS Pod Identity against the emulator."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers import podidentity, systemnodes
from controlplane.providers.aws.reconcilers.base import ReconcileError
from controlplane.providers.aws.reconcilers.nodegroup import NODE_GROUP_LABEL
from controlplane.sandbox.pytest_plugin import Sandbox
from tests.providers.reconcilers.test_platform_reconcilers import (
    EKS,
    Account,
    RecordingContext,
    new_owner,
    run_until_done,
)

SYSTEM = systemnodes.reconciler
POD_IDENTITY = podidentity.reconciler


@pytest.fixture
def account(sandbox: Sandbox) -> Account:
    return Account(sandbox)


@pytest.fixture
def plane_ctx(account: Account) -> RecordingContext:
    """IAM, the network and an ACTIVE EKS cluster: what these two steps run after."""
    return account.ctx_for("system_nodes", new_owner())


def test_system_node_group_is_untainted_on_demand_and_owned_by_the_compute_plane(
    account: Account, plane_ctx: RecordingContext
) -> None:
    assert [a.action for a in SYSTEM.plan(plane_ctx)] == ["create"]
    start = account.seq()
    run_until_done(lambda: SYSTEM.ensure(plane_ctx))
    assert account.mutating_since(start) == ["eks:CreateNodegroup"]

    group = account.clients("eks").describe_nodegroup(
        clusterName=plane_ctx.state["eks_cluster_name"], nodegroupName="lakeplane-system"
    )["nodegroup"]
    assert group["labels"][NODE_GROUP_LABEL] == "system"
    assert group.get("taints", []) == []  # Lakeplane's own pods carry no toleration
    assert group["capacityType"] == "ON_DEMAND"
    assert group["instanceTypes"] == ["m6i.large"]
    assert group["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 3}
    assert sorted(group["subnets"]) == sorted(plane_ctx.state["private_subnet_ids"])
    assert group["nodeRole"] == plane_ctx.state["node_role_arn"]
    assert plane_ctx.owner.owns(group["tags"])

    again = account.seq()
    SYSTEM.ensure(account.ctx(plane_ctx.owner, plane_ctx.spec, **plane_ctx.state))
    assert account.mutating_since(again) == []
    assert [a.action for a in SYSTEM.plan(plane_ctx)] == ["none"]


def test_system_node_group_is_deleted_without_recorded_state_so_the_cluster_can_go(
    account: Account, plane_ctx: RecordingContext
) -> None:
    run_until_done(lambda: SYSTEM.ensure(plane_ctx))
    # The sweeper knows only the compute plane's id: the cluster's name is derived.
    stateless = account.ctx(plane_ctx.owner, plane_ctx.spec)
    run_until_done(lambda: SYSTEM.delete(stateless))
    run_until_done(lambda: EKS.delete(stateless))
    assert account.owned(plane_ctx.owner).get("eks:cluster") is None
    start = account.seq()
    SYSTEM.delete(stateless)  # nothing left: no call that changes anything
    assert account.mutating_since(start) == []


def test_dry_run_of_a_new_plane_lists_the_system_node_group_and_pod_identity(
    account: Account,
) -> None:
    ctx = account.ctx(new_owner())  # nothing exists yet, nothing recorded
    start = account.seq()
    planned = [(a.action, a.kind, a.name) for a in SYSTEM.plan(ctx) + POD_IDENTITY.plan(ctx)]
    assert planned == [
        ("create", "eks:nodegroup", "lakeplane-system"),
        ("create", "eks:addon", "eks-pod-identity-agent"),
        ("create", "eks:pod-identity-association", "lakeplane-system/lakeplane-agent"),
    ]
    assert account.mutating_since(start) == []


def test_pod_identity_maps_the_agent_service_account_to_the_agent_role(
    account: Account, plane_ctx: RecordingContext
) -> None:
    start = account.seq()
    POD_IDENTITY.ensure(plane_ctx)
    assert account.mutating_since(start) == ["eks:CreateAddon", "eks:CreatePodIdentityAssociation"]
    eks = account.clients("eks")
    cluster = plane_ctx.state["eks_cluster_name"]
    addon = eks.describe_addon(clusterName=cluster, addonName="eks-pod-identity-agent")["addon"]
    assert addon["status"] == "ACTIVE"
    assert plane_ctx.owner.owns(addon["tags"])
    (summary,) = eks.list_pod_identity_associations(clusterName=cluster)["associations"]
    association = eks.describe_pod_identity_association(
        clusterName=cluster, associationId=summary["associationId"]
    )["association"]
    # The namespace and service account computeplane_agent.install renders the agent with.
    assert (association["namespace"], association["serviceAccount"]) == (
        "lakeplane-system",
        "lakeplane-agent",
    )
    assert association["roleArn"] == plane_ctx.state["agent_role_arn"]
    assert dict(plane_ctx.recorded)["pod_identity_association_id"] == summary["associationId"]
    assert dict(plane_ctx.recorded)["pod_identity_addon_arn"] == addon["addonArn"]

    again = account.seq()
    POD_IDENTITY.ensure(account.ctx(plane_ctx.owner, plane_ctx.spec, **plane_ctx.state))
    assert account.mutating_since(again) == []

    run_until_done(lambda: POD_IDENTITY.delete(plane_ctx))
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []
    assert plane_ctx.state["pod_identity_association_id"] is None


def test_an_add_on_installed_by_the_customer_is_used_and_left_alone(
    account: Account, plane_ctx: RecordingContext
) -> None:
    eks = account.clients("eks")
    cluster = plane_ctx.state["eks_cluster_name"]
    eks.create_addon(clusterName=cluster, addonName="eks-pod-identity-agent")
    POD_IDENTITY.ensure(plane_ctx)
    assert "pod_identity_addon_arn" not in plane_ctx.state
    run_until_done(lambda: POD_IDENTITY.delete(plane_ctx))
    assert eks.list_addons(clusterName=cluster)["addons"] == ["eks-pod-identity-agent"]
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []


def test_a_strangers_association_for_the_agent_is_a_conflict(
    account: Account, plane_ctx: RecordingContext
) -> None:
    eks = account.clients("eks")
    eks.create_pod_identity_association(
        clusterName=plane_ctx.state["eks_cluster_name"],
        namespace="lakeplane-system",
        serviceAccount="lakeplane-agent",
        roleArn=plane_ctx.state["node_role_arn"],
    )
    with pytest.raises(ReconcileError) as failure:
        POD_IDENTITY.ensure(plane_ctx)
    assert failure.value.code == "resource_conflict"
    assert plane_ctx.state["node_role_arn"] in failure.value.message


def test_pod_identity_needs_the_cluster_and_the_agent_role(account: Account) -> None:
    with pytest.raises(ReconcileError) as failure:
        POD_IDENTITY.ensure(account.ctx(new_owner()))
    assert failure.value.code == "missing_prerequisite"


# --- The emulator's add-on and Pod Identity APIs (controlplane/sandbox/eksextras.py) ---------


def test_emulated_eks_pod_identity_apis_answer_as_eks(
    account: Account, plane_ctx: RecordingContext
) -> None:
    eks = account.clients("eks")
    cluster = plane_ctx.state["eks_cluster_name"]
    role = plane_ctx.state["agent_role_arn"]
    with pytest.raises(ClientError) as missing:
        eks.list_addons(clusterName="lakeplane-nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as no_role:
        eks.create_pod_identity_association(
            clusterName=cluster,
            namespace="ns",
            serviceAccount="sa",
            roleArn=role.replace("-agent", "-nope"),
        )
    assert no_role.value.response["Error"]["Code"] == "InvalidParameterException"

    first = eks.create_pod_identity_association(
        clusterName=cluster,
        namespace="ns",
        serviceAccount="sa",
        roleArn=role,
        clientRequestToken="t",
    )["association"]
    # The same token again is the same create; another create for that account is refused.
    replay = eks.create_pod_identity_association(
        clusterName=cluster,
        namespace="ns",
        serviceAccount="sa",
        roleArn=role,
        clientRequestToken="t",
    )["association"]
    assert replay["associationId"] == first["associationId"]
    with pytest.raises(ClientError) as taken:
        eks.create_pod_identity_association(
            clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role
        )
    assert taken.value.response["Error"]["Code"] == "ResourceInUseException"
    assert (
        eks.list_pod_identity_associations(clusterName=cluster, namespace="other")["associations"]
        == []
    )
    eks.create_addon(clusterName=cluster, addonName="eks-pod-identity-agent")
    with pytest.raises(ClientError) as twice:
        eks.create_addon(clusterName=cluster, addonName="eks-pod-identity-agent")
    assert twice.value.response["Error"]["Code"] == "ResourceInUseException"

    # EKS deletes add-ons and associations with their cluster: a new cluster of that name has none.
    run_until_done(lambda: EKS.delete(plane_ctx))
    fresh = account.ctx(plane_ctx.owner, plane_ctx.spec, **plane_ctx.state)
    run_until_done(lambda: EKS.ensure(fresh))
    assert eks.list_addons(clusterName=cluster)["addons"] == []
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == []
    with pytest.raises(ClientError) as gone:
        eks.describe_pod_identity_association(
            clusterName=cluster, associationId=first["associationId"]
        )
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
