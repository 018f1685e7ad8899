"""The cluster and nodes security groups and the rules between them.

Rules (ingress; egress stays the default allow-all, which nodes need to pull images):

* nodes ← nodes: all traffic (pod to pod, CoreDNS, kube-proxy);
* nodes ← cluster: 443 (webhooks served by pods), 10250 (kubelet), 1025-65535 (extension
  API servers and other control-plane → pod traffic);
* cluster ← nodes: 443 (kubelets and pods reach the Kubernetes API).

State: ``cluster_security_group_id``, ``node_security_group_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    ReconcileContext,
    ReconcileError,
)
from controlplane.providers.aws.reconcilers.vpc import current_vpc_id

KIND = "ec2:security-group"
GROUPS = {
    "cluster": ("cluster_security_group_id", "EKS control plane of a Lakeplane compute plane"),
    "nodes": ("node_security_group_id", "Worker nodes of a Lakeplane compute plane"),
}


@dataclass(frozen=True)
class Rule:
    """An ingress rule into ``group`` from ``source`` (both "cluster" or "nodes")."""

    group: str
    source: str
    protocol: str  # "-1" = all
    from_port: int
    to_port: int
    description: str


RULES = (
    Rule("nodes", "nodes", "-1", -1, -1, "nodes to nodes: all traffic"),
    Rule("nodes", "cluster", "tcp", 443, 443, "control plane to pod webhooks"),
    Rule("nodes", "cluster", "tcp", 10250, 10250, "control plane to kubelet"),
    Rule("nodes", "cluster", "tcp", 1025, 65535, "control plane to pods"),
    Rule("cluster", "nodes", "tcp", 443, 443, "nodes to the Kubernetes API"),
)

Key = tuple[str, int, int, str]  # protocol, from, to, source group id


def _rule_key(rule: Rule, ids: dict[str, str]) -> Key:
    return (rule.protocol, rule.from_port, rule.to_port, ids[rule.source])


def _existing_keys(group: Resource) -> set[Key]:
    keys = set()
    for permission in group.get("IpPermissions") or []:
        protocol = str(permission.get("IpProtocol"))
        low, high = (
            (-1, -1)
            if protocol == "-1"
            else (permission.get("FromPort", -1), permission.get("ToPort", -1))
        )
        for pair in permission.get("UserIdGroupPairs") or []:
            keys.add((protocol, int(low), int(high), pair["GroupId"]))
    return keys


def _permission(rule: Rule, ids: dict[str, str]) -> dict[str, Any]:
    permission: dict[str, Any] = {
        "IpProtocol": rule.protocol,
        "UserIdGroupPairs": [{"GroupId": ids[rule.source], "Description": rule.description}],
    }
    if rule.protocol != "-1":
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    return permission


def group_name(ctx: ReconcileContext, role: str) -> str:
    return ctx.owner.resource_name(f"{role}-sg")


def _owned_groups(ctx: ReconcileContext) -> dict[str, list[Resource]]:
    return _ec2.by_name(_ec2.describe_owned(ctx, "DescribeSecurityGroups", "SecurityGroups"))


def _recorded(ctx: ReconcileContext) -> list[str | None]:
    return [ctx.state.get(key) for key, _ in GROUPS.values()]


class SecurityGroupsReconciler:
    name = "security_groups"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        owned = _owned_groups(ctx)
        groups: dict[str, Resource] = {}
        actions = []
        for role in GROUPS:
            name = group_name(ctx, role)
            group, _ = _ec2.choose(owned.get(name, []), "GroupId", _recorded(ctx))
            if group is None:
                rules = sum(1 for r in RULES if r.group == role)
                actions.append(
                    PlannedAction("create", KIND, name, f"{role} group with {rules} rule(s)")
                )
            else:
                groups[role] = group
        if len(groups) == len(GROUPS):
            ids = {role: str(g["GroupId"]) for role, g in groups.items()}
            for role, group in groups.items():
                missing = [
                    r
                    for r in RULES
                    if r.group == role and _rule_key(r, ids) not in _existing_keys(group)
                ]
                name = group_name(ctx, role)
                if missing:
                    detail = "add rules: " + "; ".join(r.description for r in missing)
                    actions.append(PlannedAction("update", KIND, name, detail))
                else:
                    actions.append(PlannedAction("none", KIND, name, ids[role]))
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        vpc_id = current_vpc_id(ctx)
        if vpc_id is None:
            raise ReconcileError(
                "dependency_missing", "The compute plane's VPC does not exist yet."
            )
        owned = _owned_groups(ctx)
        groups: dict[str, Resource] = {}
        for role, (state_key, description) in GROUPS.items():
            group, extras = _ec2.choose(
                owned.get(group_name(ctx, role), []), "GroupId", _recorded(ctx)
            )
            if group is None:
                group = self._create(ctx, vpc_id, role, description)
            if ctx.state.get(state_key) != group["GroupId"]:
                ctx.remember(state_key, group["GroupId"])
            for extra in extras:
                _delete_groups(ctx, [extra])
            groups[role] = group
        ids = {role: str(g["GroupId"]) for role, g in groups.items()}
        added = 0
        for role, group in groups.items():
            missing = [
                r
                for r in RULES
                if r.group == role and _rule_key(r, ids) not in _existing_keys(group)
            ]
            if missing:
                # A retried authorize after a lost response answers InvalidPermission.Duplicate.
                _ec2.call_ignoring(
                    _ec2.ec2(ctx),
                    "AuthorizeSecurityGroupIngress",
                    ("InvalidPermission.Duplicate",),
                    GroupId=ids[role],
                    IpPermissions=[_permission(r, ids) for r in missing],
                )
                added += len(missing)
        return f"cluster {ids['cluster']}, nodes {ids['nodes']}; {added} rule(s) added"

    def _create(self, ctx: ReconcileContext, vpc_id: str, role: str, description: str) -> Resource:
        name = group_name(ctx, role)
        # Group names are unique per VPC, so a retried create answers InvalidGroup.Duplicate
        # and the group the first attempt made is found by its tags.
        _ec2.call_ignoring(
            _ec2.ec2(ctx),
            "CreateSecurityGroup",
            ("InvalidGroup.Duplicate",),
            GroupName=name,
            Description=description,
            VpcId=vpc_id,
            TagSpecifications=_ec2.tag_specifications(ctx, "security-group", name),
        )
        group, _ = _ec2.choose(_owned_groups(ctx).get(name, []), "GroupId")
        if group is None:
            raise ReconcileError(
                "conflict",
                f"A security group named {name} exists in {vpc_id} without Lakeplane's tags; "
                "delete or rename it, then retry.",
            )
        return group

    def delete(self, ctx: ReconcileContext) -> str:
        found = [g for group in _owned_groups(ctx).values() for g in group]
        _delete_groups(ctx, found)
        for state_key, _ in GROUPS.values():
            if ctx.state.get(state_key) is not None:
                ctx.forget(state_key)
        return f"deleted {len(found)} security group(s)" if found else "no security group left"


def _delete_groups(ctx: ReconcileContext, groups: list[Resource]) -> None:
    """Revoke the rules that reference other groups first: a referenced group cannot go."""
    client = _ec2.ec2(ctx)
    for group in groups:
        referencing = [p for p in group.get("IpPermissions") or [] if p.get("UserIdGroupPairs")]
        if referencing:
            _ec2.call_ignoring(
                client,
                "RevokeSecurityGroupIngress",
                ("InvalidPermission.NotFound",),
                GroupId=group["GroupId"],
                IpPermissions=[_strip(p) for p in referencing],
            )
    for group in groups:
        _ec2.call_ignoring(client, "DeleteSecurityGroup", (), GroupId=group["GroupId"])


def _strip(permission: dict[str, Any]) -> dict[str, Any]:
    """A described permission in the shape Revoke accepts (no empty lists, no rule ids)."""
    keep = {k: v for k, v in permission.items() if k in {"IpProtocol", "FromPort", "ToPort"}}
    # As described (the emulator matches the description too; AWS ignores it when revoking).
    pair_keys = {"GroupId", "UserId", "Description"}
    keep["UserIdGroupPairs"] = [
        {k: v for k, v in pair.items() if k in pair_keys} for pair in permission["UserIdGroupPairs"]
    ]
    return keep


reconciler = SecurityGroupsReconciler()
