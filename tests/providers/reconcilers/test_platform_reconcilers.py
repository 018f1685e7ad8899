"""IAM, EKS and S3 reconcilers against the emulator over HTTP (controlplane.sandbox).

The customer account is played by ``admin_client``; every AWS call goes through the sandbox
layer, whose call log counts the mutating ones and whose fault rules lose responses, deny
permissions and hold EKS clusters in CREATING.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from controlplane.providers.aws import policies
from controlplane.providers.aws.reconcilers import buckets, eks, iam, podidentity, systemnodes
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    ReconcileContext,
    ReconcileError,
    Reconciler,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.platform import PLATFORM_RECONCILERS
from controlplane.sandbox.customers import admin_client, create_agent_secrets_policy
from controlplane.sandbox.pytest_plugin import Sandbox

IAM = iam.reconciler
EKS = eks.reconciler
BUCKETS = buckets.reconciler
SYSTEM_NODES = systemnodes.reconciler
POD_IDENTITY = podidentity.reconciler

# The calls that create something, per reconciler: where a lost response could duplicate.
CREATE_ACTIONS = {
    "iam": ["CreateRole", "CreateInstanceProfile", "AddRoleToInstanceProfile", "AttachRolePolicy"],
    "eks": ["CreateCluster"],
    "system_nodes": ["CreateNodegroup"],
    "pod_identity": ["CreateAddon", "CreatePodIdentityAssociation"],
    "buckets": ["CreateBucket", "PutBucketTagging"],
}
EXPECTED = {
    "iam": {"iam:role": 3, "iam:instance-profile": 1},
    "eks": {"eks:cluster": 1},
    "system_nodes": {"eks:nodegroup": 1},
    "pod_identity": {"eks:addon": 1, "eks:pod-identity-association": 1},
    "buckets": {"s3:bucket": 2},
}
# What the earlier steps a kind needs leave behind (ctx_for makes them).
_IAM_MADE = {"iam:role": 3, "iam:instance-profile": 1}
PREREQUISITES: dict[str, dict[str, int]] = {
    "eks": _IAM_MADE,
    "system_nodes": _IAM_MADE | {"eks:cluster": 1},
    "pod_identity": _IAM_MADE | {"eks:cluster": 1},
}
BY_NAME: dict[str, Reconciler] = {
    "iam": IAM,
    "eks": EKS,
    "system_nodes": SYSTEM_NODES,
    "pod_identity": POD_IDENTITY,
    "buckets": BUCKETS,
}


def new_owner() -> Ownership:
    return Ownership(org_id="org_test", compute_plane_id=f"cp_{secrets.token_hex(6)}")


@dataclass
class RecordingContext(ReconcileContext):
    """A context whose recorder (the engine's per-id commit) keeps a list to look at."""

    recorded: list[tuple[str, Any]] = field(default_factory=list)


class Account:
    """One customer account in the emulator, with helpers to build contexts and read it back."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.clients: Callable[[str], Any] = lambda service: admin_client(
            sandbox.endpoint_url, service, sandbox.account_id
        )
        # What the customer's onboarding stack creates besides the role: the agent's policy.
        self.agent_secrets_policy_arn = create_agent_secrets_policy(
            sandbox.endpoint_url, sandbox.account_id
        )
        self._network: dict[str, Any] | None = None

    def network(self) -> dict[str, Any]:
        """VPC, two private subnets and a cluster security group (the networking steps' job)."""
        if self._network is None:
            ec2 = self.clients("ec2")
            vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
            subnets = [
                ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"][
                    "SubnetId"
                ]
                for cidr, az in (("10.42.0.0/20", "us-east-1a"), ("10.42.16.0/20", "us-east-1b"))
            ]
            group = ec2.create_security_group(
                GroupName=f"cluster-{secrets.token_hex(3)}", Description="cluster", VpcId=vpc
            )["GroupId"]
            self._network = {
                "vpc_id": vpc,
                "private_subnet_ids": subnets,
                "cluster_security_group_id": group,
            }
        return dict(self._network)

    def ctx(
        self, owner: Ownership, spec: ComputePlaneSpec | None = None, **state: Any
    ) -> RecordingContext:
        ctx = RecordingContext(
            clients=self.clients,
            owner=owner,
            spec=spec or ComputePlaneSpec(name="analytics", region="us-east-1"),
            state=dict(state),
        )
        ctx.record = lambda key, value: ctx.recorded.append((key, value))
        return ctx

    def ctx_for(
        self, kind: str, owner: Ownership, spec: ComputePlaneSpec | None = None
    ) -> RecordingContext:
        """A context with what the step needs from earlier steps (EKS: IAM and network; the
        system node group and Pod Identity: an ACTIVE EKS cluster too)."""
        if kind not in PREREQUISITES:
            return self.ctx(owner, spec)
        prior = self.ctx(owner, spec, **self.network())
        IAM.ensure(prior)
        if kind != "eks":
            run_until_done(lambda: EKS.ensure(prior))
        return self.ctx(owner, spec, **prior.state)

    def seq(self) -> int:
        calls = self.sandbox.control.calls(account=self.sandbox.account_id)
        return max((c.seq for c in calls), default=0)

    def mutating_since(self, seq: int) -> list[str]:
        return [
            f"{c.service}:{c.action}"
            for c in self.sandbox.control.calls(account=self.sandbox.account_id, since=seq)
            if c.mutating
        ]

    def owned(self, owner: Ownership) -> dict[str, list[str]]:
        """Every resource of the kinds these reconcilers make that carries ``owner``'s tags."""
        found: dict[str, list[str]] = {}
        client = self.clients("iam")
        for role in client.list_roles(PathPrefix="/")["Roles"]:
            tags = client.list_role_tags(RoleName=role["RoleName"])["Tags"]
            if owner.owns(tags):
                found.setdefault("iam:role", []).append(role["RoleName"])
        for profile in client.list_instance_profiles()["InstanceProfiles"]:
            name = profile["InstanceProfileName"]
            tags = client.get_instance_profile(InstanceProfileName=name)["InstanceProfile"].get(
                "Tags"
            )
            if owner.owns(tags):
                found.setdefault("iam:instance-profile", []).append(name)
        client = self.clients("eks")
        for name in client.list_clusters()["clusters"]:
            if owner.owns(client.describe_cluster(name=name)["cluster"].get("tags")):
                found.setdefault("eks:cluster", []).append(name)
            for group in client.list_nodegroups(clusterName=name)["nodegroups"]:
                tags = client.describe_nodegroup(clusterName=name, nodegroupName=group)[
                    "nodegroup"
                ].get("tags")
                if owner.owns(tags):
                    found.setdefault("eks:nodegroup", []).append(f"{name}/{group}")
            for addon in client.list_addons(clusterName=name)["addons"]:
                tags = client.describe_addon(clusterName=name, addonName=addon)["addon"]["tags"]
                if owner.owns(tags):
                    found.setdefault("eks:addon", []).append(f"{name}/{addon}")
            for summary in client.list_pod_identity_associations(clusterName=name)["associations"]:
                association = client.describe_pod_identity_association(
                    clusterName=name, associationId=summary["associationId"]
                )["association"]
                if owner.owns(association["tags"]):
                    found.setdefault("eks:pod-identity-association", []).append(
                        f"{name}/{summary['associationId']}"
                    )
        client = self.clients("s3")
        for bucket in client.list_buckets()["Buckets"]:
            try:
                tags = client.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
            except client.exceptions.ClientError:
                continue
            if owner.owns(tags):
                found.setdefault("s3:bucket", []).append(bucket["Name"])
        return found


def counts(found: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(names) for kind, names in found.items()}


def run_until_done(step: Callable[[], str], attempts: int = 5) -> str:
    """What the engine does with WaitFor: call the step again (here without the delay)."""
    for _ in range(attempts):
        try:
            return step()
        except WaitFor:
            continue
    raise AssertionError("still waiting")


@pytest.fixture
def account(sandbox: Sandbox) -> Account:
    return Account(sandbox)


KINDS = ["iam", "eks", "system_nodes", "pod_identity", "buckets"]


def test_platform_order() -> None:
    # The system node group and Pod Identity need the cluster; teardown removes them before it.
    assert [r.name for r in PLATFORM_RECONCILERS] == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_ensure_creates_one_of_each_then_a_second_ensure_mutates_nothing(
    account: Account, kind: str
) -> None:
    owner = new_owner()
    ctx = account.ctx_for(kind, owner)
    reconciler = BY_NAME[kind]
    planned = reconciler.plan(ctx)
    assert planned
    assert {a.action for a in planned} == {"create"}

    start = account.seq()
    reconciler.ensure(ctx)
    assert account.mutating_since(start), "the first ensure created nothing"
    assert counts(account.owned(owner)) == EXPECTED[kind] | PREREQUISITES.get(kind, {})

    again = account.seq()
    reconciler.ensure(account.ctx(owner, ctx.spec, **ctx.state))
    assert account.mutating_since(again) == []
    assert {a.action for a in reconciler.plan(ctx)} == {"none"}


@pytest.mark.parametrize("kind", KINDS)
def test_lost_create_responses_make_no_duplicates(account: Account, kind: str) -> None:
    owner = new_owner()
    ctx = account.ctx_for(kind, owner)
    for action in CREATE_ACTIONS[kind]:
        account.sandbox.control.add_fault(
            "drop_response", action=action, account=account.sandbox.account_id, count=1
        )
    reconciler = BY_NAME[kind]
    start = account.seq()
    run_until_done(lambda: reconciler.ensure(ctx))
    dropped = [
        c.action
        for c in account.sandbox.control.calls(account=account.sandbox.account_id, since=start)
        if c.outcome == "drop_response"
    ]
    assert sorted(dropped) == sorted(CREATE_ACTIONS[kind])  # every create lost its answer once
    found = account.owned(owner)
    for resource_kind, expected in EXPECTED[kind].items():
        assert len(found[resource_kind]) == expected, found
    again = account.seq()
    reconciler.ensure(account.ctx(owner, ctx.spec, **ctx.state))
    assert account.mutating_since(again) == []


@pytest.mark.parametrize("kind", KINDS)
def test_delete_leaves_nothing_and_a_second_delete_is_a_no_op(account: Account, kind: str) -> None:
    owner = new_owner()
    ctx = account.ctx_for(kind, owner)
    reconciler = BY_NAME[kind]
    reconciler.ensure(ctx)
    run_until_done(lambda: reconciler.delete(ctx))
    left = account.owned(owner)
    for resource_kind in EXPECTED[kind]:
        assert resource_kind not in left, left
    start = account.seq()
    reconciler.delete(ctx)
    assert account.mutating_since(start) == []


@pytest.mark.parametrize("kind", KINDS)
def test_two_compute_planes_in_one_account_never_touch_each_other(
    account: Account, kind: str
) -> None:
    first, second = new_owner(), new_owner()
    reconciler = BY_NAME[kind]
    ctx_first = account.ctx_for(kind, first)
    ctx_second = account.ctx_for(kind, second)
    reconciler.ensure(ctx_first)
    reconciler.ensure(ctx_second)
    before = account.owned(second)
    for resource_kind, expected in EXPECTED[kind].items():
        assert len(account.owned(first)[resource_kind]) == expected
        assert len(before[resource_kind]) == expected

    run_until_done(lambda: reconciler.delete(ctx_first))
    assert account.owned(second) == before
    start = account.seq()
    reconciler.ensure(account.ctx(second, ctx_second.spec, **ctx_second.state))
    assert account.mutating_since(start) == []


@pytest.mark.parametrize(
    ("kind", "action", "iam_action"),
    [
        ("iam", "CreateRole", "iam:CreateRole"),
        ("eks", "CreateCluster", "eks:CreateCluster"),
        ("system_nodes", "CreateNodegroup", "eks:CreateNodegroup"),
        ("pod_identity", "CreateAddon", "eks:CreateAddon"),
        ("pod_identity", "CreatePodIdentityAssociation", "eks:CreatePodIdentityAssociation"),
        ("buckets", "CreateBucket", "s3:CreateBucket"),
        ("buckets", "PutBucketPolicy", "s3:PutBucketPolicy"),
    ],
)
def test_a_missing_permission_names_the_action(
    account: Account, kind: str, action: str, iam_action: str
) -> None:
    ctx = account.ctx_for(kind, new_owner())
    account.sandbox.control.add_fault("access_denied", action=action)
    with pytest.raises(ReconcileError) as failure:
        BY_NAME[kind].ensure(ctx)
    assert failure.value.code == "permission_missing"
    assert iam_action in failure.value.message


# --- IAM ---------------------------------------------------------------------------------------


def test_iam_roles_are_pathed_named_attached_and_recorded(account: Account) -> None:
    owner = new_owner()
    ctx = account.ctx(owner)
    IAM.ensure(ctx)
    client = account.clients("iam")
    expected = {
        "cluster_role_arn": ("eks-cluster", "eks.amazonaws.com", set(iam.CLUSTER_POLICIES)),
        "node_role_arn": ("eks-node", "ec2.amazonaws.com", set(iam.NODE_POLICIES)),
        # The agent reads catalog secrets with the customer's own policy, and with nothing else.
        "agent_role_arn": ("agent", "pods.eks.amazonaws.com", {account.agent_secrets_policy_arn}),
    }
    for key, (suffix, service, attached) in expected.items():
        name = owner.resource_name(suffix)
        role = client.get_role(RoleName=name)["Role"]
        assert ctx.state[key] == role["Arn"]
        assert role["Path"] == policies.MANAGED_IAM_PATH
        assert fnmatch.fnmatchcase(role["Arn"], "arn:aws:iam::*:role/lakeplane/lakeplane-*")
        document = role["AssumeRolePolicyDocument"]
        trust = json.loads(document) if isinstance(document, str) else document
        assert trust["Statement"][0]["Principal"] == {"Service": service}
        policies_now = client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        assert {p["PolicyArn"] for p in policies_now} == attached
    profile = client.get_instance_profile(InstanceProfileName=owner.resource_name("eks-node"))
    assert ctx.state["node_instance_profile_arn"] == profile["InstanceProfile"]["Arn"]
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [
        owner.resource_name("eks-node")
    ]
    # Every id was recorded the moment it was known, through the engine's recorder.
    assert {k for k, _ in ctx.recorded} == set(expected) | {"node_instance_profile_arn"}


def test_iam_refuses_a_role_of_that_name_that_is_not_ours(account: Account) -> None:
    owner = new_owner()
    client = account.clients("iam")
    client.create_role(
        RoleName=owner.resource_name("eks-cluster"),
        Path="/lakeplane/",
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "team", "Value": "data"}],
    )
    with pytest.raises(ReconcileError) as failure:
        IAM.ensure(account.ctx(owner))
    assert failure.value.code == "resource_conflict"
    assert owner.resource_name("eks-cluster") in failure.value.message
    # Delete leaves a stranger's role alone.
    IAM.delete(account.ctx(owner))
    assert client.get_role(RoleName=owner.resource_name("eks-cluster"))["Role"]


def test_iam_reattaches_a_detached_policy(account: Account) -> None:
    owner = new_owner()
    ctx = account.ctx(owner)
    IAM.ensure(ctx)
    name = owner.resource_name("eks-node")
    account.clients("iam").detach_role_policy(RoleName=name, PolicyArn=iam.NODE_POLICIES[0])
    assert [a.action for a in IAM.plan(ctx) if a.name == name and a.kind == "iam:role"] == [
        "update"
    ]
    start = account.seq()
    IAM.ensure(ctx)
    assert account.mutating_since(start) == ["iam:AttachRolePolicy"]


def test_iam_agent_role_holds_the_customers_secrets_policy_in_its_own_account(
    account: Account,
) -> None:
    owner = new_owner()
    ctx = account.ctx(owner)
    IAM.ensure(ctx)
    assert account.agent_secrets_policy_arn == (
        f"arn:aws:iam::{account.sandbox.account_id}:policy/lakeplane/lakeplane-agent-secrets"
    )
    client = account.clients("iam")
    (attached,) = client.list_attached_role_policies(RoleName=owner.resource_name("agent"))[
        "AttachedPolicies"
    ]
    assert attached["PolicyArn"] == account.agent_secrets_policy_arn
    # Converged: a second ensure makes no change at all.
    start = account.seq()
    IAM.ensure(ctx)
    assert account.mutating_since(start) == []
    # Detached by hand: the plan says so and ensure puts it back with one attach.
    client.detach_role_policy(
        RoleName=owner.resource_name("agent"), PolicyArn=account.agent_secrets_policy_arn
    )
    (agent_plan,) = [a for a in IAM.plan(ctx) if a.name == owner.resource_name("agent")]
    assert (agent_plan.action, agent_plan.detail) == (
        "update",
        f"attach {account.agent_secrets_policy_arn}",
    )
    start = account.seq()
    IAM.ensure(ctx)
    assert account.mutating_since(start) == ["iam:AttachRolePolicy"]


def test_iam_without_the_agent_secrets_policy_asks_to_update_the_access_stack(
    account: Account,
) -> None:
    # An account onboarded before the policy existed.
    account.clients("iam").delete_policy(PolicyArn=account.agent_secrets_policy_arn)
    owner = new_owner()
    with pytest.raises(ReconcileError) as failure:
        IAM.ensure(account.ctx(owner))
    assert failure.value.code == "permission_missing"
    assert account.agent_secrets_policy_arn in failure.value.message
    assert "Update the Lakeplane access stack from the latest onboarding template" in (
        failure.value.message
    )
    # Nothing was silently skipped: once the customer updates the stack, ensure converges.
    create_agent_secrets_policy(account.sandbox.endpoint_url, account.sandbox.account_id)
    ctx = account.ctx(owner)
    IAM.ensure(ctx)
    attached = account.clients("iam").list_attached_role_policies(
        RoleName=owner.resource_name("agent")
    )["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [account.agent_secrets_policy_arn]


def test_iam_when_the_role_may_not_attach_the_policy_asks_to_update_the_access_stack(
    account: Account,
) -> None:
    owner = new_owner()
    ctx = account.ctx(owner)
    IAM.ensure(ctx)
    account.clients("iam").detach_role_policy(
        RoleName=owner.resource_name("agent"), PolicyArn=account.agent_secrets_policy_arn
    )
    # A stack from before this policy: the role's attach condition refuses it (AccessDenied).
    account.sandbox.control.add_fault(
        "access_denied", service="iam", action="AttachRolePolicy", count=1
    )
    with pytest.raises(ReconcileError) as failure:
        IAM.ensure(ctx)
    assert failure.value.code == "permission_missing"
    assert "Update the Lakeplane access stack from the latest onboarding template" in (
        failure.value.message
    )


# --- EKS ---------------------------------------------------------------------------------------


def test_eks_cluster_is_created_as_specified(account: Account) -> None:
    owner = new_owner()
    spec = ComputePlaneSpec(
        name="analytics",
        region="us-east-1",
        kubernetes_version="1.30",
        endpoint_access="public_and_private",
        public_access_cidrs=("203.0.113.0/24",),
        control_plane_logging=("api", "audit"),
        kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    ctx = account.ctx_for("eks", owner, spec)
    EKS.ensure(ctx)
    cluster = account.clients("eks").describe_cluster(name=eks.cluster_name(ctx))["cluster"]
    assert cluster["name"] == f"lakeplane-{owner.compute_plane_id}".replace("_", "-")
    assert cluster["version"] == "1.30"
    assert cluster["roleArn"] == ctx.state["cluster_role_arn"]
    vpc = cluster["resourcesVpcConfig"]
    assert vpc["subnetIds"] == ctx.state["private_subnet_ids"]
    assert vpc["securityGroupIds"] == [ctx.state["cluster_security_group_id"]]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert cluster["encryptionConfig"] == [
        {"resources": ["secrets"], "provider": {"keyArn": spec.kms_key_arn}}
    ]
    enabled = [g for g in cluster["logging"]["clusterLogging"] if g["enabled"]]
    assert [sorted(g["types"]) for g in enabled] == [["api", "audit"]]
    assert cluster["tags"] == owner.tag_map(cluster["name"])
    assert ctx.state["eks_cluster_name"] == cluster["name"]
    assert ctx.state["eks_cluster_arn"] == cluster["arn"]
    assert ctx.state["eks_endpoint"] == cluster["endpoint"]
    assert ctx.state["eks_oidc_issuer"] == cluster["identity"]["oidc"]["issuer"]


def test_eks_private_endpoint_by_default(account: Account) -> None:
    ctx = account.ctx_for("eks", new_owner())
    EKS.ensure(ctx)
    vpc = account.clients("eks").describe_cluster(name=eks.cluster_name(ctx))["cluster"][
        "resourcesVpcConfig"
    ]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, False)


def test_eks_waits_while_creating_then_records_the_endpoint_when_active(
    account: Account,
) -> None:
    account.sandbox.control.hold_new_eks_clusters()
    ctx = account.ctx_for("eks", new_owner())
    with pytest.raises(WaitFor) as waiting:
        EKS.ensure(ctx)
    assert "CREATING" in waiting.value.detail
    assert waiting.value.delay >= 10
    # The ids known at create time are recorded before the wait; the endpoint is not yet.
    assert ctx.state["eks_cluster_arn"]
    assert "eks_endpoint" not in ctx.state
    assert [a.action for a in EKS.plan(ctx)] == ["wait"]

    # Still CREATING: another look makes no mutating call (no second create).
    start = account.seq()
    with pytest.raises(WaitFor):
        EKS.ensure(ctx)
    assert account.mutating_since(start) == []

    name = eks.cluster_name(ctx)
    account.sandbox.control.set_eks_cluster_status(account.sandbox.account_id, name, "ACTIVE")
    assert "ACTIVE" in EKS.ensure(ctx)
    assert ctx.state["eks_endpoint"].startswith("https://")
    assert account.mutating_since(start) == []
    assert counts(account.owned(ctx.owner))["eks:cluster"] == 1


def test_eks_failed_cluster_is_a_clear_error(account: Account) -> None:
    account.sandbox.control.hold_new_eks_clusters()
    ctx = account.ctx_for("eks", new_owner())
    with pytest.raises(WaitFor):
        EKS.ensure(ctx)
    subnet = ctx.state["private_subnet_ids"][0]
    account.sandbox.control.set_eks_cluster_status(
        account.sandbox.account_id,
        eks.cluster_name(ctx),
        "FAILED",
        issues=[
            {
                "code": "Ec2SubnetInvalidConfiguration",
                "message": "One or more subnets have no free IP addresses",
                "resourceIds": [subnet],
            }
        ],
    )
    with pytest.raises(ReconcileError) as failure:
        EKS.ensure(ctx)
    assert failure.value.code == "eks_cluster_failed"
    message = failure.value.message
    assert "FAILED" in message
    assert "Ec2SubnetInvalidConfiguration" in message
    assert "no free IP addresses" in message
    assert subnet in message


def test_eks_updates_only_what_changed(account: Account) -> None:
    owner = new_owner()
    ctx = account.ctx_for("eks", owner)
    EKS.ensure(ctx)
    changed = ComputePlaneSpec(
        name="analytics",
        region="us-east-1",
        endpoint_access="public_and_private",
        public_access_cidrs=("198.51.100.0/24", "203.0.113.0/24"),
    )
    ctx = account.ctx(owner, changed, **ctx.state)
    assert [(a.action, a.detail) for a in EKS.plan(ctx)] == [("update", "endpoint access")]
    start = account.seq()
    run_until_done(lambda: EKS.ensure(ctx))
    assert account.mutating_since(start) == ["eks:UpdateClusterConfig"]
    vpc = account.clients("eks").describe_cluster(name=eks.cluster_name(ctx))["cluster"][
        "resourcesVpcConfig"
    ]
    assert vpc["endpointPublicAccess"] is True
    assert sorted(vpc["publicAccessCidrs"]) == ["198.51.100.0/24", "203.0.113.0/24"]

    logging = ComputePlaneSpec(
        name="analytics",
        region="us-east-1",
        endpoint_access="public_and_private",
        public_access_cidrs=("198.51.100.0/24", "203.0.113.0/24"),
        control_plane_logging=("api", "audit", "authenticator", "scheduler"),
    )
    ctx = account.ctx(owner, logging, **ctx.state)
    start = account.seq()
    run_until_done(lambda: EKS.ensure(ctx))
    assert account.mutating_since(start) == ["eks:UpdateClusterConfig"]
    start = account.seq()
    EKS.ensure(ctx)
    assert account.mutating_since(start) == []


def test_eks_delete_waits_while_deleting(account: Account) -> None:
    ctx = account.ctx_for("eks", new_owner())
    EKS.ensure(ctx)
    account.sandbox.control.set_eks_cluster_status(
        account.sandbox.account_id, eks.cluster_name(ctx), "DELETING"
    )
    start = account.seq()
    with pytest.raises(WaitFor):
        EKS.delete(ctx)
    assert account.mutating_since(start) == []


def test_eks_without_network_ids_says_what_is_missing(account: Account) -> None:
    with pytest.raises(ReconcileError) as failure:
        EKS.ensure(account.ctx(new_owner()))
    assert failure.value.code == "missing_prerequisite"
    assert "private_subnet_ids" in failure.value.message


def test_eks_refuses_a_cluster_of_that_name_that_is_not_ours(account: Account) -> None:
    owner = new_owner()
    ctx = account.ctx_for("eks", owner)
    account.clients("eks").create_cluster(
        name=eks.cluster_name(ctx),
        roleArn=ctx.state["cluster_role_arn"],
        resourcesVpcConfig={"subnetIds": ctx.state["private_subnet_ids"]},
        tags={"team": "data"},
    )
    with pytest.raises(ReconcileError) as failure:
        EKS.ensure(ctx)
    assert failure.value.code == "resource_conflict"
    EKS.delete(ctx)  # leaves it alone
    assert account.clients("eks").describe_cluster(name=eks.cluster_name(ctx))["cluster"]


# --- S3 ----------------------------------------------------------------------------------------


def test_bucket_names_are_short_lowercase_and_per_account() -> None:
    long_id = "cp_" + "A" * 60
    name = buckets.bucket_name(long_id, "warehouse", "111122223333", "us-east-1")
    assert len(name) <= 63
    assert name == name.lower()
    assert name.startswith("lakeplane-cp-aaa")
    assert name.endswith(
        buckets.bucket_name("cp_x", "warehouse", "111122223333", "us-east-1")[-19:]
    )
    assert buckets.bucket_name("cp_x", "logs", "111122223333", "us-east-1") != buckets.bucket_name(
        "cp_x", "logs", "111122223334", "us-east-1"
    )


def test_buckets_are_encrypted_versioned_private_and_tls_only(account: Account) -> None:
    owner = new_owner()
    ctx = account.ctx(owner)
    BUCKETS.ensure(ctx)
    s3 = account.clients("s3")
    names = ctx.state["buckets"]
    assert set(names) == {"warehouse", "logs"}
    for purpose, name in names.items():
        assert name.startswith(f"lakeplane-{owner.compute_plane_id.replace('_', '-')}-{purpose}-")
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"],
            True,
        )
        (statement,) = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
        assert tags == owner.tag_map(name)


def test_buckets_use_the_kms_key_when_given(account: Account) -> None:
    key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ctx = account.ctx(new_owner(), ComputePlaneSpec("analytics", "us-east-1", kms_key_arn=key))
    BUCKETS.ensure(ctx)
    rules = account.clients("s3").get_bucket_encryption(Bucket=ctx.state["buckets"]["logs"])[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key,
    }


def test_bucket_delete_empties_every_version_first(account: Account) -> None:
    ctx = account.ctx(new_owner())
    BUCKETS.ensure(ctx)
    s3 = account.clients("s3")
    warehouse = ctx.state["buckets"]["warehouse"]
    # The emulator is plain HTTP, which the TLS-only bucket policy (rightly) refuses; the
    # customer's data writers would use HTTPS. Lift the policy to seed objects.
    for name in ctx.state["buckets"].values():
        s3.delete_bucket_policy(Bucket=name)
    for i in range(3):
        s3.put_object(Bucket=warehouse, Key="t/part-0", Body=f"v{i}".encode())
    s3.delete_object(Bucket=warehouse, Key="t/part-0")  # leaves a delete marker
    s3.put_object(Bucket=ctx.state["buckets"]["logs"], Key="a.log", Body=b"x")
    BUCKETS.delete(ctx)
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert warehouse not in existing
    assert "buckets" not in {k for k, v in ctx.state.items() if v is not None}


def test_bucket_created_but_not_tagged_is_adopted(account: Account) -> None:
    """A crash between CreateBucket and PutBucketTagging leaves an untagged bucket of our name."""
    owner = new_owner()
    ctx = account.ctx(owner)
    names = [a.name for a in BUCKETS.plan(ctx)]
    account.clients("s3").create_bucket(Bucket=names[0])
    BUCKETS.ensure(ctx)
    assert counts(account.owned(owner)) == {"s3:bucket": 2}


def test_bucket_tagged_for_another_compute_plane_is_refused(account: Account) -> None:
    owner, other = new_owner(), new_owner()
    ctx = account.ctx(owner)
    name = BUCKETS.plan(ctx)[0].name
    s3 = account.clients("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": other.tags(name)})
    with pytest.raises(ReconcileError) as failure:
        BUCKETS.ensure(ctx)
    assert failure.value.code == "resource_conflict"
    assert name in failure.value.message


# --- The customer role's policy covers every call ----------------------------------------------

# API operation → IAM action where they differ (S3 names its permissions its own way).
_PERMISSION_OF = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:DeleteObjects": "s3:DeleteObjectVersion",
}


def _granted(action: str) -> bool:
    for statement in policies.permissions_policy()["Statement"]:
        listed = statement["Action"]
        if any(fnmatch.fnmatchcase(action, a) for a in [listed] if isinstance(a, str)) or any(
            fnmatch.fnmatchcase(action, a) for a in (listed if isinstance(listed, list) else [])
        ):
            return True
    return False


def test_every_call_the_platform_steps_make_is_granted_to_the_customer_role(
    account: Account,
) -> None:
    owner = new_owner()
    ctx = account.ctx(owner, ComputePlaneSpec("analytics", "us-east-1"), **account.network())
    start = account.seq()
    for reconciler in PLATFORM_RECONCILERS:
        reconciler.plan(ctx)
        run_until_done(lambda r=reconciler: r.ensure(ctx))  # type: ignore[misc]
    for reconciler in reversed(PLATFORM_RECONCILERS):
        run_until_done(lambda r=reconciler: r.delete(ctx))  # type: ignore[misc]
    calls = {
        f"{c.service}:{c.action}"
        for c in account.sandbox.control.calls(account=account.sandbox.account_id, since=start)
    }
    # Beyond the network fixture's own EC2 calls (made before ``start``), the steps call these.
    permissions = {_PERMISSION_OF.get(call, call) for call in calls} | {"iam:PassRole"}
    assert len(permissions) > 20
    assert [p for p in sorted(permissions) if not _granted(p)] == []
    assert account.owned(owner) == {}


def test_eks_status_control_refuses_bad_input(account: Account) -> None:
    control = account.sandbox.control
    with pytest.raises(requests.HTTPError) as unknown:
        control.set_eks_cluster_status(account.sandbox.account_id, "lakeplane-nope", "ACTIVE")
    assert unknown.value.response.status_code == 400
    assert "no cluster" in unknown.value.response.json()["error"]
    ctx = account.ctx_for("eks", new_owner())
    EKS.ensure(ctx)
    with pytest.raises(requests.HTTPError) as bad:
        control.set_eks_cluster_status(account.sandbox.account_id, eks.cluster_name(ctx), "DONE")
    assert bad.value.response.status_code == 400
