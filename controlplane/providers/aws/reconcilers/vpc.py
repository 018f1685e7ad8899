"""The compute plane's VPC, with DNS support and DNS hostnames (EKS needs both).

State: ``vpc_id``.
"""

from __future__ import annotations

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import PlannedAction, ReconcileContext

KIND = "ec2:vpc"
DNS_ATTRIBUTES = (
    ("enableDnsSupport", "EnableDnsSupport"),
    ("enableDnsHostnames", "EnableDnsHostnames"),
)


def vpc_name(ctx: ReconcileContext) -> str:
    return ctx.owner.resource_name("vpc")


def _find(ctx: ReconcileContext) -> list[Resource]:
    return _ec2.describe_owned(
        ctx, "DescribeVpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": [vpc_name(ctx)]}]
    )


def _current(ctx: ReconcileContext) -> tuple[Resource | None, list[Resource]]:
    return _ec2.choose(_find(ctx), "VpcId", [ctx.state.get("vpc_id")])


def current_vpc_id(ctx: ReconcileContext) -> str | None:
    """The VPC other network reconcilers build in: looked up by tag, so each works standalone."""
    vpc, _ = _current(ctx)
    return None if vpc is None else str(vpc["VpcId"])


def _dns_attributes_off(ctx: ReconcileContext, vpc_id: str) -> list[str]:
    client = _ec2.ec2(ctx)
    off = []
    for attribute, response_key in DNS_ATTRIBUTES:
        answer = _ec2.call(client, "DescribeVpcAttribute", VpcId=vpc_id, Attribute=attribute)
        if not answer.get(response_key, {}).get("Value"):
            off.append(response_key)
    return off


class VpcReconciler:
    name = "vpc"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        name = vpc_name(ctx)
        vpc, extras = _current(ctx)
        if vpc is None:
            return [PlannedAction("create", KIND, name, f"CIDR {ctx.spec.vpc_cidr}, DNS on")]
        actions = [PlannedAction("delete", KIND, name, f"duplicate {e['VpcId']}") for e in extras]
        off = _dns_attributes_off(ctx, vpc["VpcId"])
        if off:
            actions.append(PlannedAction("update", KIND, name, f"turn on {', '.join(off)}"))
        return actions or [PlannedAction("none", KIND, name, vpc["VpcId"])]

    def ensure(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        vpc, extras = _current(ctx)
        if vpc is None:
            # CreateVpc takes no client token: the Name tag, applied atomically by
            # TagSpecifications, is what a retry or a resumed step finds instead.
            vpc = _ec2.create_then_dedupe(
                ctx,
                lambda: _ec2.call(
                    client,
                    "CreateVpc",
                    CidrBlock=ctx.spec.vpc_cidr,
                    TagSpecifications=_ec2.tag_specifications(ctx, "vpc", vpc_name(ctx)),
                )["Vpc"],
                lambda: _find(ctx),
                "VpcId",
                lambda extra: _delete_vpc(client, extra["VpcId"]),
            )
            created = True
        else:
            created = False
        vpc_id = str(vpc["VpcId"])
        if ctx.state.get("vpc_id") != vpc_id:
            ctx.remember("vpc_id", vpc_id)
        for extra in extras:
            _delete_vpc(client, extra["VpcId"])
        for response_key in _dns_attributes_off(ctx, vpc_id):
            # ModifyVpcAttribute takes exactly one attribute per call.
            _ec2.call(client, "ModifyVpcAttribute", VpcId=vpc_id, **{response_key: {"Value": True}})
        verb = "created" if created else "found"
        return f"{verb} {vpc_id} ({vpc.get('CidrBlock', ctx.spec.vpc_cidr)})"

    def delete(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        found = _find(ctx)
        for vpc in found:
            # DependencyViolation (something still inside) becomes WaitFor: the engine retries
            # once the other reconcilers' deletes have run.
            _delete_vpc(client, vpc["VpcId"])
        if ctx.state.get("vpc_id") is not None:
            ctx.forget("vpc_id")
        return f"deleted {len(found)} VPC(s)" if found else "no VPC left"


def _delete_vpc(client: object, vpc_id: str) -> None:
    _ec2.call_ignoring(client, "DeleteVpc", (), VpcId=vpc_id)


reconciler = VpcReconciler()
