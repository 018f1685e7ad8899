"""EKS Pod Identity for the agent: the ``eks-pod-identity-agent`` add-on and one association.

The agent role (iam.py) trusts ``pods.eks.amazonaws.com``; pods get it only if the cluster runs
the Pod Identity agent (an EKS add-on, a DaemonSet that tolerates every taint) and an association
maps the agent's service account (``lakeplane-system/lakeplane-agent``, as
``computeplane_agent.install`` renders it) to the role.

Discipline as in base.py: the add-on's name is fixed per cluster and the association is looked up
by namespace and service account, so both are found before anything is created; creates carry
the compute plane's tags and a client token; ids are recorded at once; a converged ensure is
three reads (DescribeAddon, ListPodIdentityAssociations, DescribePodIdentityAssociation). An
add-on someone installed outside Lakeplane is used and left alone (never recorded or deleted).

Reads from state: ``eks_cluster_name``, ``agent_role_arn``.
Records: ``pod_identity_addon_arn``, ``pod_identity_association_id``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from computeplane_agent.contract import AGENT_NAMESPACE
from computeplane_agent.install import AGENT_NAME
from controlplane.providers.aws.reconcilers.awscall import aws_call
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    ReconcileContext,
    ReconcileError,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.eks import cluster_name

ADDON_NAME = "eks-pod-identity-agent"
ADDON_KIND = "eks:addon"
ASSOCIATION_KIND = "eks:pod-identity-association"
SERVICE_ACCOUNT = f"{AGENT_NAMESPACE}/{AGENT_NAME}"
# An add-on settles within a minute or two; polling faster only spends API calls.
POLL_SECONDS = 15.0
_STILL_GOING = {"CREATING", "UPDATING", "DELETING"}
_NOT_FOUND = {"ResourceNotFoundException"}


def _describe_addon(eks: Any, cluster: str) -> dict[str, Any] | None:
    try:
        addon: dict[str, Any] = aws_call(
            "eks:DescribeAddon",
            eks.describe_addon,
            tolerate=_NOT_FOUND,
            clusterName=cluster,
            addonName=ADDON_NAME,
        )["addon"]
    except ClientError:
        return None  # no such add-on, or no such cluster
    return addon


def _associations(eks: Any, cluster: str) -> list[dict[str, Any]]:
    """The agent's service account's associations (at most one, as EKS allows), described."""
    try:
        found = aws_call(
            "eks:ListPodIdentityAssociations",
            eks.list_pod_identity_associations,
            tolerate=_NOT_FOUND,
            clusterName=cluster,
            namespace=AGENT_NAMESPACE,
            serviceAccount=AGENT_NAME,
        )["associations"]
    except ClientError:
        return []  # no cluster
    described = []
    for summary in found:
        with contextlib.suppress(ClientError):
            described.append(
                aws_call(
                    "eks:DescribePodIdentityAssociation",
                    eks.describe_pod_identity_association,
                    tolerate=_NOT_FOUND,
                    clusterName=cluster,
                    associationId=summary["associationId"],
                )["association"]
            )
    return described


def _remember(ctx: ReconcileContext, key: str, value: Any) -> None:
    # Each record is a database write in the engine: skip the ones that change nothing.
    if ctx.state.get(key) != value:
        ctx.remember(key, value)


def _conflict(ctx: ReconcileContext, cluster: str, association: dict[str, Any]) -> ReconcileError:
    return ReconcileError(
        "resource_conflict",
        f"EKS cluster {cluster} has a Pod Identity association for {SERVICE_ACCOUNT} "
        f"({association.get('associationId')}, role {association.get('roleArn')}) that is not "
        f"compute plane {ctx.owner.compute_plane_id}'s. Delete it, then retry.",
    )


class PodIdentityReconciler:
    name = "pod_identity"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        eks = ctx.clients("eks")
        cluster = ctx.state.get("eks_cluster_name") or cluster_name(ctx)
        addon = _describe_addon(eks, cluster)
        actions = [PlannedAction("none" if addon else "create", ADDON_KIND, ADDON_NAME)]
        associated = _associations(eks, cluster)
        actions.append(
            PlannedAction(
                "none" if associated else "create",
                ASSOCIATION_KIND,
                SERVICE_ACCOUNT,
                "" if associated else "the compute plane's agent role",
            )
        )
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        cluster = ctx.state.get("eks_cluster_name")
        role_arn = ctx.state.get("agent_role_arn")
        if not cluster or not role_arn:
            raise ReconcileError(
                "missing_prerequisite",
                "Cannot set up EKS Pod Identity: earlier steps recorded no EKS cluster or agent "
                "role. Retry the operation from the start.",
            )
        addon = self._ensure_addon(ctx, eks, cluster)
        association = self._ensure_association(ctx, eks, cluster, role_arn)
        return (
            f"add-on {ADDON_NAME} {addon.get('status')}; {SERVICE_ACCOUNT} → "
            f"{association['roleArn']} ({association['associationId']})"
        )

    def _ensure_addon(self, ctx: ReconcileContext, eks: Any, cluster: str) -> dict[str, Any]:
        addon = _describe_addon(eks, cluster)
        if addon is None:
            try:
                addon = aws_call(
                    "eks:CreateAddon",
                    eks.create_addon,
                    tolerate={"ResourceInUseException"},
                    clusterName=cluster,
                    addonName=ADDON_NAME,
                    clientRequestToken=ctx.owner.client_token("eks-addon-pod-identity"),
                    tags=ctx.owner.tag_map(ADDON_NAME),
                )["addon"]
            except ClientError:
                addon = _describe_addon(eks, cluster)  # our create whose answer was lost
                if addon is None:
                    raise WaitFor(f"add-on {ADDON_NAME} is being replaced") from None
        if ctx.owner.owns(addon.get("tags")):
            _remember(ctx, "pod_identity_addon_arn", addon["addonArn"])
        status = addon.get("status", "")
        if status in _STILL_GOING:
            raise WaitFor(f"add-on {ADDON_NAME} is {status}", delay=POLL_SECONDS)
        if status == "CREATE_FAILED":
            issues = "; ".join(
                f"{i.get('code')}: {i.get('message')}"
                for i in (addon.get("health") or {}).get("issues") or []
            )
            raise ReconcileError(
                "addon_failed",
                f"The EKS add-on {ADDON_NAME} on {cluster} is CREATE_FAILED "
                f"({issues or 'no issues reported'}). Delete the add-on in the EKS console, "
                "then retry.",
            )
        return addon

    def _ensure_association(
        self, ctx: ReconcileContext, eks: Any, cluster: str, role_arn: str
    ) -> dict[str, Any]:
        for association in _associations(eks, cluster):
            if not ctx.owner.owns(association.get("tags")) or association["roleArn"] != role_arn:
                raise _conflict(ctx, cluster, association)
            _remember(ctx, "pod_identity_association_id", association["associationId"])
            return association
        try:
            created: dict[str, Any] = aws_call(
                "eks:CreatePodIdentityAssociation",
                eks.create_pod_identity_association,
                tolerate={"ResourceInUseException"},
                clusterName=cluster,
                namespace=AGENT_NAMESPACE,
                serviceAccount=AGENT_NAME,
                roleArn=role_arn,
                clientRequestToken=ctx.owner.client_token("eks-pod-identity-agent-role"),
                tags=ctx.owner.tag_map(ctx.owner.resource_name("agent")),
            )["association"]
        except ClientError:
            # Made meanwhile (our lost answer, or someone else's): look again next time.
            raise WaitFor(f"a Pod Identity association for {SERVICE_ACCOUNT} appeared") from None
        _remember(ctx, "pod_identity_association_id", created["associationId"])
        return created

    def delete(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        cluster = ctx.state.get("eks_cluster_name") or cluster_name(ctx)
        for association in _associations(eks, cluster):
            if ctx.owner.owns(association.get("tags")):
                with contextlib.suppress(ClientError):
                    aws_call(
                        "eks:DeletePodIdentityAssociation",
                        eks.delete_pod_identity_association,
                        tolerate=_NOT_FOUND,
                        clusterName=cluster,
                        associationId=association["associationId"],
                    )
        addon = _describe_addon(eks, cluster)
        if addon is not None and ctx.owner.owns(addon.get("tags")):
            if addon.get("status") != "DELETING":
                with contextlib.suppress(ClientError):
                    aws_call(
                        "eks:DeleteAddon",
                        eks.delete_addon,
                        tolerate=_NOT_FOUND,
                        clusterName=cluster,
                        addonName=ADDON_NAME,
                    )
            if _describe_addon(eks, cluster) is not None:
                raise WaitFor(f"add-on {ADDON_NAME} is DELETING", delay=POLL_SECONDS)
        for key in ("pod_identity_association_id", "pod_identity_addon_arn"):
            if ctx.state.get(key) is not None:
                ctx.forget(key)
        return f"Pod Identity for {SERVICE_ACCOUNT} and add-on {ADDON_NAME} deleted"


reconciler = PodIdentityReconciler()
