"""The compute plane's EKS cluster.

The name is deterministic (``lakeplane-<cp id>``) and unique per account and region, so it is the
lookup key. CreateCluster carries a client token derived from the compute plane, so a create
whose answer was lost and is sent again is the same create (and where an emulator ignores the
token, ``ResourceInUseException`` leads to the same describe-and-adopt path).

A cluster takes ~10 minutes to become ACTIVE: ``ensure`` raises :class:`WaitFor` while it is
CREATING or UPDATING instead of sleeping, and only an ACTIVE cluster is compared with the spec.
Mutable settings (endpoint public access and its CIDRs, control-plane logging) are changed with
UpdateClusterConfig — one kind of change per call, as EKS requires — and only when they differ, so
a converged cluster costs one DescribeCluster and nothing else.

Reads from state: ``cluster_role_arn`` (iam), ``private_subnet_ids`` (or ``subnet_ids``),
``public_subnet_ids`` (optional), ``cluster_security_group_id``.
Records: ``eks_cluster_name``, ``eks_cluster_arn``, then once ACTIVE ``eks_endpoint`` and
``eks_oidc_issuer``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.awscall import aws_call
from controlplane.providers.aws.reconcilers.base import (
    NAME_PREFIX,
    PlannedAction,
    ReconcileContext,
    ReconcileError,
    WaitFor,
)

KIND = "eks:cluster"
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# EKS changes state over minutes; polling more often only spends API calls.
POLL_SECONDS = 30.0
_STILL_GOING = {"CREATING", "UPDATING", "PENDING"}
_RECORDED = ("eks_cluster_name", "eks_cluster_arn", "eks_endpoint", "eks_oidc_issuer")


def cluster_name(ctx: ReconcileContext) -> str:
    return f"{NAME_PREFIX}{ctx.owner.compute_plane_id}".replace("_", "-")


def _describe(eks: Any, name: str) -> dict[str, Any] | None:
    try:
        cluster: dict[str, Any] = aws_call(
            "eks:DescribeCluster",
            eks.describe_cluster,
            tolerate={"ResourceNotFoundException"},
            name=name,
        )["cluster"]
    except ClientError:
        return None
    return cluster


def _remember(ctx: ReconcileContext, key: str, value: Any) -> None:
    # Each record is a database write in the engine: skip the ones that change nothing.
    if ctx.state.get(key) != value:
        ctx.remember(key, value)


def _desired_access(ctx: ReconcileContext) -> dict[str, Any]:
    public = ctx.spec.endpoint_access == "public_and_private"
    access: dict[str, Any] = {"endpointPrivateAccess": True, "endpointPublicAccess": public}
    if public:
        # EKS itself defaults an empty list to 0.0.0.0/0; say so explicitly to compare equal.
        access["publicAccessCidrs"] = sorted(ctx.spec.public_access_cidrs) or ["0.0.0.0/0"]
    return access


def _access_differs(cluster: dict[str, Any], desired: dict[str, Any]) -> bool:
    current = cluster.get("resourcesVpcConfig", {})
    if bool(current.get("endpointPrivateAccess")) != desired["endpointPrivateAccess"]:
        return True
    if bool(current.get("endpointPublicAccess")) != desired["endpointPublicAccess"]:
        return True
    # With public access off, EKS keeps reporting 0.0.0.0/0, which means nothing then.
    return bool(desired["endpointPublicAccess"]) and sorted(
        current.get("publicAccessCidrs", [])
    ) != list(desired["publicAccessCidrs"])


def _enabled_logs(cluster: dict[str, Any]) -> set[str]:
    enabled: set[str] = set()
    for group in cluster.get("logging", {}).get("clusterLogging", []):
        if group.get("enabled"):
            enabled.update(group.get("types", []))
    return enabled


def _desired_logging(ctx: ReconcileContext) -> dict[str, Any]:
    on = sorted(set(ctx.spec.control_plane_logging))
    off = sorted(set(LOG_TYPES) - set(on))
    groups = [{"types": on, "enabled": True}] if on else []
    if off:
        groups.append({"types": off, "enabled": False})
    return {"clusterLogging": groups}


def _update_token(ctx: ReconcileContext, what: str, value: Any) -> str:
    # Same change → same token (a resent update is recognised); a new change → a new token.
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
    return ctx.owner.client_token(f"eks-update-{what}-{digest}")


def _health(cluster: dict[str, Any]) -> str:
    issues = cluster.get("health", {}).get("issues", [])
    if not issues:
        return "EKS reported no health issues"
    parts = []
    for issue in issues:
        ids = ", ".join(issue.get("resourceIds", []))
        text = f"{issue.get('code', 'Unknown')}: {issue.get('message', '')}".strip()
        parts.append(f"{text} ({ids})" if ids else text)
    return "; ".join(parts)


def _failed(name: str, cluster: dict[str, Any]) -> ReconcileError:
    return ReconcileError(
        "eks_cluster_failed",
        f"EKS cluster {name} is FAILED: {_health(cluster)}. Fix the cause (subnets, security "
        "group, IAM role or KMS key), then delete the compute plane and create it again.",
    )


def _conflict(ctx: ReconcileContext, name: str) -> ReconcileError:
    return ReconcileError(
        "resource_conflict",
        f"An EKS cluster named {name} already exists in this region but is not tagged as "
        f"compute plane {ctx.owner.compute_plane_id}'s. Rename or delete it, then retry.",
    )


class EksReconciler:
    name = "eks"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        name = cluster_name(ctx)
        cluster = _describe(ctx.clients("eks"), name)
        version = ctx.spec.kubernetes_version
        if cluster is None:
            return [PlannedAction("create", KIND, name, f"Kubernetes {version}")]
        if not ctx.owner.owns(cluster.get("tags")):
            return [PlannedAction("create", KIND, name, "conflict: name taken, not ours")]
        status = cluster.get("status", "")
        if status in _STILL_GOING or status == "DELETING":
            return [PlannedAction("wait", KIND, name, status)]
        if status == "FAILED":
            return [PlannedAction("none", KIND, name, f"FAILED: {_health(cluster)}")]
        changes = []
        if _access_differs(cluster, _desired_access(ctx)):
            changes.append("endpoint access")
        if _enabled_logs(cluster) != set(ctx.spec.control_plane_logging):
            changes.append("logging")
        if changes:
            return [PlannedAction("update", KIND, name, ", ".join(changes))]
        return [PlannedAction("none", KIND, name)]

    def ensure(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        name = cluster_name(ctx)
        cluster = _describe(eks, name)
        if cluster is None:
            cluster = self._create(ctx, eks, name)
        elif not ctx.owner.owns(cluster.get("tags")):
            raise _conflict(ctx, name)
        _remember(ctx, "eks_cluster_name", name)
        _remember(ctx, "eks_cluster_arn", cluster["arn"])
        status = cluster.get("status", "")
        if status in _STILL_GOING:
            raise WaitFor(f"EKS cluster {name} is {status}", delay=POLL_SECONDS)
        if status == "DELETING":
            raise WaitFor(f"EKS cluster {name} is still being deleted", delay=POLL_SECONDS)
        if status == "FAILED":
            raise _failed(name, cluster)
        if status != "ACTIVE":
            raise WaitFor(f"EKS cluster {name} is {status or 'in an unknown state'}")

        access = _desired_access(ctx)
        if _access_differs(cluster, access):
            self._update(ctx, eks, name, "access", resourcesVpcConfig=access)
            raise WaitFor(f"EKS cluster {name}: updating endpoint access", delay=POLL_SECONDS)
        if _enabled_logs(cluster) != set(ctx.spec.control_plane_logging):
            self._update(ctx, eks, name, "logging", logging=_desired_logging(ctx))
            raise WaitFor(f"EKS cluster {name}: updating logging", delay=POLL_SECONDS)

        _remember(ctx, "eks_endpoint", cluster.get("endpoint"))
        issuer = cluster.get("identity", {}).get("oidc", {}).get("issuer")
        _remember(ctx, "eks_oidc_issuer", issuer)
        return f"EKS cluster {name} ACTIVE (Kubernetes {cluster.get('version')})"

    def _create(self, ctx: ReconcileContext, eks: Any, name: str) -> dict[str, Any]:
        role_arn = ctx.state.get("cluster_role_arn")
        private = ctx.state.get("private_subnet_ids") or ctx.state.get("subnet_ids") or []
        public = ctx.state.get("public_subnet_ids") or []
        security_group = ctx.state.get("cluster_security_group_id")
        missing = [
            key
            for key, value in (
                ("cluster_role_arn", role_arn),
                ("private_subnet_ids", private),
                ("cluster_security_group_id", security_group),
            )
            if not value
        ]
        if missing:
            raise ReconcileError(
                "missing_prerequisite",
                f"Cannot create EKS cluster {name}: earlier steps recorded no "
                f"{', '.join(missing)}. Retry the operation from the start.",
            )
        request: dict[str, Any] = {
            "name": name,
            "version": ctx.spec.kubernetes_version,
            "roleArn": role_arn,
            "resourcesVpcConfig": {
                "subnetIds": [*private, *public],
                "securityGroupIds": [security_group],
                **_desired_access(ctx),
            },
            "logging": _desired_logging(ctx),
            "clientRequestToken": ctx.owner.client_token("eks-cluster"),
            "tags": ctx.owner.tag_map(name),
        }
        if ctx.spec.kms_key_arn:
            request["encryptionConfig"] = [
                {"resources": ["secrets"], "provider": {"keyArn": ctx.spec.kms_key_arn}}
            ]
        try:
            created: dict[str, Any] = aws_call(
                "eks:CreateCluster",
                eks.create_cluster,
                tolerate={"ResourceInUseException"},
                **request,
            )["cluster"]
        except ClientError:
            # Already there: our own create whose answer was lost, or a stranger's cluster.
            found = _describe(eks, name)
            if found is None:
                raise WaitFor(f"EKS cluster {name} is being replaced", delay=POLL_SECONDS) from None
            if not ctx.owner.owns(found.get("tags")):
                raise _conflict(ctx, name) from None
            return found
        return created

    def _update(self, ctx: ReconcileContext, eks: Any, name: str, what: str, **change: Any) -> None:
        aws_call(
            "eks:UpdateClusterConfig",
            eks.update_cluster_config,
            name=name,
            clientRequestToken=_update_token(ctx, what, change),
            **change,
        )

    def delete(self, ctx: ReconcileContext) -> str:
        eks = ctx.clients("eks")
        name = cluster_name(ctx)
        cluster = _describe(eks, name)
        if cluster is not None and ctx.owner.owns(cluster.get("tags")):
            if cluster.get("status") == "DELETING":
                raise WaitFor(f"EKS cluster {name} is DELETING", delay=POLL_SECONDS)
            with contextlib.suppress(ClientError):
                aws_call(
                    "eks:DeleteCluster",
                    eks.delete_cluster,
                    tolerate={"ResourceNotFoundException"},
                    name=name,
                )
            if _describe(eks, name) is not None:
                raise WaitFor(f"EKS cluster {name} is DELETING", delay=POLL_SECONDS)
        # Gone (or never ours: a stranger's cluster of that name is left alone).
        for key in _RECORDED:
            if ctx.state.get(key) is not None:
                ctx.forget(key)
        return f"EKS cluster {name} deleted"


reconciler = EksReconciler()
