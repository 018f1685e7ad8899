"""IAM for a compute plane: EKS cluster role, node role (+ instance profile), agent role.

Names are deterministic (``lakeplane-<cp id>-…``) and IAM names are unique per account, so the
name is the lookup key: there is no tag search in IAM, and ``EntityAlreadyExists`` after a lost
response simply means "look again". Everything lives under the ``/lakeplane/`` path, the only
path the customer role's policy lets Lakeplane create, change or delete roles on (its own access
role lives on ``/lakeplane-access/`` so these grants can never touch it). Only the AWS-managed
policies EKS needs, and for the agent the customer's own ``lakeplane-agent-secrets`` policy
(created by their onboarding stack), are attached — the customer role may attach nothing else
and may not write inline policies.

State: ``cluster_role_arn``, ``node_role_arn``, ``node_instance_profile_arn``, ``agent_role_arn``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.policies import (
    AGENT_SECRETS_POLICY_NAME,
    MANAGED_IAM_PATH,
    agent_secrets_policy_arn,
)
from controlplane.providers.aws.reconcilers.awscall import aws_call
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    PlanVerb,
    ReconcileContext,
    ReconcileError,
)

CLUSTER_POLICIES = ("arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",)
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)


def _trust(service: str, *, tag_session: bool = False) -> str:
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}
            ],
        }
    )


@dataclass(frozen=True)
class RoleSpec:
    suffix: str  # name suffix: lakeplane-<cp id>-<suffix>
    state_key: str
    trust_service: str
    policies: tuple[str, ...]
    description: str
    tag_session: bool = False
    # Also an instance profile of the same name, recorded under this key.
    instance_profile_key: str | None = None
    # Whether the customer's lakeplane-agent-secrets policy (in the role's account) is attached.
    agent_secrets: bool = False

    def policy_arns(self, role_arn: str) -> set[str]:
        """The policies this role must hold; customer-managed ones live in the role's account."""
        arns = set(self.policies)
        if self.agent_secrets:
            arns.add(agent_secrets_policy_arn(role_arn.split(":")[4]))
        return arns


ROLES = (
    RoleSpec(
        "eks-cluster",
        "cluster_role_arn",
        "eks.amazonaws.com",
        CLUSTER_POLICIES,
        "Lakeplane: the EKS control plane of a compute plane",
        tag_session=True,
    ),
    RoleSpec(
        "eks-node",
        "node_role_arn",
        "ec2.amazonaws.com",
        NODE_POLICIES,
        "Lakeplane: the EKS worker nodes of a compute plane",
        instance_profile_key="node_instance_profile_arn",
    ),
    # The agent runs in the cluster and gets its credentials through EKS Pod Identity, which
    # needs no OIDC provider (the cluster does not exist yet when this step runs). It reads the
    # secrets catalogs name, inside the VPC, with the customer's agent-secrets policy.
    RoleSpec(
        "agent",
        "agent_role_arn",
        "pods.eks.amazonaws.com",
        (),
        "Lakeplane: the compute-plane agent",
        tag_session=True,
        agent_secrets=True,
    ),
)


def _get_role(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        role: dict[str, Any] = aws_call(
            "iam:GetRole", iam.get_role, tolerate={"NoSuchEntity"}, RoleName=name
        )["Role"]
    except ClientError:
        return None
    return role


def _get_instance_profile(iam: Any, name: str) -> dict[str, Any] | None:
    try:
        profile: dict[str, Any] = aws_call(
            "iam:GetInstanceProfile",
            iam.get_instance_profile,
            tolerate={"NoSuchEntity"},
            InstanceProfileName=name,
        )["InstanceProfile"]
    except ClientError:
        return None
    return profile


def _attached(iam: Any, name: str) -> set[str]:
    arns: set[str] = set()
    paginator = iam.get_paginator("list_attached_role_policies")
    # Pages are fetched while iterating, so the listing happens inside the call wrapper.
    pages = aws_call(
        "iam:ListAttachedRolePolicies", lambda: list(paginator.paginate(RoleName=name))
    )
    for page in pages:
        arns.update(p["PolicyArn"] for p in page["AttachedPolicies"])
    return arns


def _missing_agent_secrets_policy(arn: str) -> ReconcileError:
    return ReconcileError(
        "permission_missing",
        f"The IAM policy {arn} ({AGENT_SECRETS_POLICY_NAME}), which lets the compute plane's "
        "agent read the secrets your catalogs name, does not exist in this account or the "
        "Lakeplane role may not attach it. Update the Lakeplane access stack from the latest "
        "onboarding template (CloudFormation or Terraform), then retry.",
    )


def _conflict(ctx: ReconcileContext, kind: str, name: str) -> ReconcileError:
    return ReconcileError(
        "resource_conflict",
        f"An IAM {kind} named {name} already exists in this account but is not tagged as "
        f"compute plane {ctx.owner.compute_plane_id}'s. Rename or delete it, then retry.",
    )


class IamReconciler:
    name = "iam"

    def _name(self, ctx: ReconcileContext, role: RoleSpec) -> str:
        return ctx.owner.resource_name(role.suffix)

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        iam = ctx.clients("iam")
        actions = []
        for role in ROLES:
            name = self._name(ctx, role)
            found = _get_role(iam, name)
            if found is None:
                actions.append(PlannedAction("create", "iam:role", name, ", ".join(role.policies)))
            elif not ctx.owner.owns(found.get("Tags")):
                actions.append(
                    PlannedAction("create", "iam:role", name, "conflict: name taken, not ours")
                )
            else:
                missing = role.policy_arns(found["Arn"]) - _attached(iam, name)
                verb: PlanVerb = "update" if missing else "none"
                detail = f"attach {', '.join(sorted(missing))}" if missing else ""
                actions.append(PlannedAction(verb, "iam:role", name, detail))
            if role.instance_profile_key:
                profile = _get_instance_profile(iam, name)
                if profile is None:
                    actions.append(PlannedAction("create", "iam:instance-profile", name))
                else:
                    has_role = any(r["RoleName"] == name for r in profile.get("Roles", []))
                    verb = "none" if has_role else "update"
                    actions.append(PlannedAction(verb, "iam:instance-profile", name))
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        iam = ctx.clients("iam")
        created = 0
        for role in ROLES:
            created += self._ensure_role(ctx, iam, role)
            if role.instance_profile_key:
                created += self._ensure_instance_profile(ctx, iam, role)
        return f"IAM roles ready ({created} created)"

    def _ensure_role(self, ctx: ReconcileContext, iam: Any, role: RoleSpec) -> int:
        name = self._name(ctx, role)
        created = 0
        found = _get_role(iam, name)
        if found is None:
            try:
                found = aws_call(
                    "iam:CreateRole",
                    iam.create_role,
                    tolerate={"EntityAlreadyExists"},
                    RoleName=name,
                    Path=MANAGED_IAM_PATH,
                    AssumeRolePolicyDocument=_trust(
                        role.trust_service, tag_session=role.tag_session
                    ),
                    Description=role.description,
                    Tags=ctx.owner.tags(name),
                )["Role"]
                created = 1
            except ClientError:
                # Our own create whose answer was lost, or someone else's role: look and judge.
                found = _get_role(iam, name)
                if found is None:
                    raise _conflict(ctx, "role", name) from None
        # CreateRole's answer carries no tags, so only a role found by GetRole is judged by them.
        if not created and not ctx.owner.owns(found.get("Tags")):
            raise _conflict(ctx, "role", name)
        ctx.remember(role.state_key, found["Arn"])
        wanted = role.policy_arns(found["Arn"])
        missing = wanted - (_attached(iam, name) if wanted else set())
        secrets_arn = agent_secrets_policy_arn(found["Arn"].split(":")[4])
        for arn in sorted(missing):
            try:
                # Attaching an attached policy is a no-op in IAM, so a retried attach is harmless.
                aws_call(
                    "iam:AttachRolePolicy",
                    iam.attach_role_policy,
                    # An account onboarded before the policy existed: no policy (NoSuchEntity),
                    # or a role whose attach condition predates it (AccessDenied).
                    tolerate={"NoSuchEntity", "AccessDenied"} if arn == secrets_arn else (),
                    RoleName=name,
                    PolicyArn=arn,
                )
            except ClientError:
                raise _missing_agent_secrets_policy(arn) from None
        return created

    def _ensure_instance_profile(self, ctx: ReconcileContext, iam: Any, role: RoleSpec) -> int:
        assert role.instance_profile_key is not None
        name = self._name(ctx, role)
        created = 0
        profile = _get_instance_profile(iam, name)
        if profile is None:
            try:
                profile = aws_call(
                    "iam:CreateInstanceProfile",
                    iam.create_instance_profile,
                    tolerate={"EntityAlreadyExists"},
                    InstanceProfileName=name,
                    Path=MANAGED_IAM_PATH,
                    Tags=ctx.owner.tags(name),
                )["InstanceProfile"]
                created = 1
            except ClientError:
                profile = _get_instance_profile(iam, name)
                if profile is None:
                    raise _conflict(ctx, "instance profile", name) from None
        if not created and not ctx.owner.owns(profile.get("Tags")):
            raise _conflict(ctx, "instance profile", name)
        ctx.remember(role.instance_profile_key, profile["Arn"])
        roles = [r["RoleName"] for r in profile.get("Roles", [])]
        if name not in roles:
            if roles:
                raise ReconcileError(
                    "resource_conflict",
                    f"Instance profile {name} holds role {roles[0]} instead of {name}.",
                )
            try:
                aws_call(
                    "iam:AddRoleToInstanceProfile",
                    iam.add_role_to_instance_profile,
                    tolerate={"LimitExceeded"},
                    InstanceProfileName=name,
                    RoleName=name,
                )
            except ClientError:
                # A profile holds one role: after a lost answer, the retry finds it full.
                profile = _get_instance_profile(iam, name)
                roles = [r["RoleName"] for r in (profile or {}).get("Roles", [])]
                if roles != [name]:
                    raise ReconcileError(
                        "resource_conflict", f"Instance profile {name} holds {roles}."
                    ) from None
        return created

    def delete(self, ctx: ReconcileContext) -> str:
        iam = ctx.clients("iam")
        deleted = 0
        for role in reversed(ROLES):
            name = self._name(ctx, role)
            if role.instance_profile_key:
                deleted += self._delete_instance_profile(ctx, iam, role, name)
            deleted += self._delete_role(ctx, iam, role, name)
        return f"IAM roles deleted ({deleted} resources)"

    def _delete_instance_profile(
        self, ctx: ReconcileContext, iam: Any, role: RoleSpec, name: str
    ) -> int:
        assert role.instance_profile_key is not None
        profile = _get_instance_profile(iam, name)
        if profile is None or not ctx.owner.owns(profile.get("Tags")):
            # Never ours, or already gone: nothing to do (a foreign profile is left alone).
            ctx.forget(role.instance_profile_key)
            return 0
        gone = {"NoSuchEntity"}
        for held in profile.get("Roles", []):
            with contextlib.suppress(ClientError):
                aws_call(
                    "iam:RemoveRoleFromInstanceProfile",
                    iam.remove_role_from_instance_profile,
                    tolerate=gone,
                    InstanceProfileName=name,
                    RoleName=held["RoleName"],
                )
        with contextlib.suppress(ClientError):
            aws_call(
                "iam:DeleteInstanceProfile",
                iam.delete_instance_profile,
                tolerate=gone,
                InstanceProfileName=name,
            )
        ctx.forget(role.instance_profile_key)
        return 1

    def _delete_role(self, ctx: ReconcileContext, iam: Any, role: RoleSpec, name: str) -> int:
        found = _get_role(iam, name)
        if found is None or not ctx.owner.owns(found.get("Tags")):
            ctx.forget(role.state_key)
            return 0
        gone = {"NoSuchEntity"}
        # A role must be out of every instance profile and have no policies before it goes.
        paginator = iam.get_paginator("list_instance_profiles_for_role")
        pages = aws_call(
            "iam:ListInstanceProfilesForRole", lambda: list(paginator.paginate(RoleName=name))
        )
        for page in pages:
            for profile in page["InstanceProfiles"]:
                with contextlib.suppress(ClientError):
                    aws_call(
                        "iam:RemoveRoleFromInstanceProfile",
                        iam.remove_role_from_instance_profile,
                        tolerate=gone,
                        InstanceProfileName=profile["InstanceProfileName"],
                        RoleName=name,
                    )
        for arn in sorted(_attached(iam, name)):
            with contextlib.suppress(ClientError):
                aws_call(
                    "iam:DetachRolePolicy",
                    iam.detach_role_policy,
                    tolerate=gone,
                    RoleName=name,
                    PolicyArn=arn,
                )
        with contextlib.suppress(ClientError):
            aws_call("iam:DeleteRole", iam.delete_role, tolerate=gone, RoleName=name)
        ctx.forget(role.state_key)
        return 1


reconciler = IamReconciler()
