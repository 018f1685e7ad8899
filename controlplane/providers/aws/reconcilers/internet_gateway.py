"""The internet gateway, attached to the compute plane's VPC (public subnets' way out).

State: ``internet_gateway_id``.
"""

from __future__ import annotations

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    ReconcileContext,
    ReconcileError,
)
from controlplane.providers.aws.reconcilers.vpc import current_vpc_id

KIND = "ec2:internet-gateway"


def igw_name(ctx: ReconcileContext) -> str:
    return ctx.owner.resource_name("igw")


def _find(ctx: ReconcileContext) -> list[Resource]:
    return _ec2.describe_owned(
        ctx,
        "DescribeInternetGateways",
        "InternetGateways",
        Filters=[{"Name": "tag:Name", "Values": [igw_name(ctx)]}],
    )


def _current(ctx: ReconcileContext) -> tuple[Resource | None, list[Resource]]:
    found = _find(ctx)
    # Prefer the recorded one, then one already attached (a resumed run may not have recorded it).
    attached = [g["InternetGatewayId"] for g in found if g.get("Attachments")]
    return _ec2.choose(
        found, "InternetGatewayId", [ctx.state.get("internet_gateway_id"), *attached]
    )


def current_internet_gateway_id(ctx: ReconcileContext) -> str | None:
    gateway, _ = _current(ctx)
    return None if gateway is None else str(gateway["InternetGatewayId"])


def _attached_vpcs(gateway: Resource) -> set[str]:
    return {
        a["VpcId"]
        for a in gateway.get("Attachments") or []
        if a.get("State") in {"attached", "available", "attaching"}
    }


class InternetGatewayReconciler:
    name = "internet_gateway"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        name = igw_name(ctx)
        gateway, extras = _current(ctx)
        if gateway is None:
            return [PlannedAction("create", KIND, name, "create and attach to the VPC")]
        actions = [
            PlannedAction("delete", KIND, name, f"duplicate {e['InternetGatewayId']}")
            for e in extras
        ]
        vpc_id = current_vpc_id(ctx)
        if vpc_id is None or vpc_id not in _attached_vpcs(gateway):
            actions.append(PlannedAction("update", KIND, name, "attach to the VPC"))
        return actions or [PlannedAction("none", KIND, name, gateway["InternetGatewayId"])]

    def ensure(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        vpc_id = current_vpc_id(ctx)
        if vpc_id is None:
            raise ReconcileError(
                "dependency_missing", "The compute plane's VPC does not exist yet."
            )
        gateway, extras = _current(ctx)
        created = gateway is None
        if gateway is None:
            gateway = _ec2.create_then_dedupe(
                ctx,
                lambda: _ec2.call(
                    client,
                    "CreateInternetGateway",
                    TagSpecifications=_ec2.tag_specifications(
                        ctx, "internet-gateway", igw_name(ctx)
                    ),
                )["InternetGateway"],
                lambda: _find(ctx),
                "InternetGatewayId",
                lambda extra: _delete_gateway(client, extra),
            )
        gateway_id = str(gateway["InternetGatewayId"])
        if ctx.state.get("internet_gateway_id") != gateway_id:
            ctx.remember("internet_gateway_id", gateway_id)
        for extra in extras:
            _delete_gateway(client, extra)
        attached = _attached_vpcs(gateway)
        if attached - {vpc_id}:
            raise ReconcileError(
                "conflict",
                f"Internet gateway {gateway_id} is attached to {', '.join(sorted(attached))}, "
                f"not to the compute plane's VPC {vpc_id}; detach it, then retry.",
            )
        if vpc_id not in attached:
            # A retried attach after a lost response answers Resource.AlreadyAssociated.
            _ec2.call_ignoring(
                client,
                "AttachInternetGateway",
                ("Resource.AlreadyAssociated",),
                InternetGatewayId=gateway_id,
                VpcId=vpc_id,
            )
        return f"{'created' if created else 'found'} {gateway_id}, attached to {vpc_id}"

    def delete(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        found = _find(ctx)
        for gateway in found:
            _delete_gateway(client, gateway)
        if ctx.state.get("internet_gateway_id") is not None:
            ctx.forget("internet_gateway_id")
        return f"deleted {len(found)} internet gateway(s)" if found else "no internet gateway left"


def _delete_gateway(client: object, gateway: Resource) -> None:
    gateway_id = gateway["InternetGatewayId"]
    for attachment in gateway.get("Attachments") or []:
        _ec2.call_ignoring(
            client,
            "DetachInternetGateway",
            ("Gateway.NotAttached",),
            InternetGatewayId=gateway_id,
            VpcId=attachment["VpcId"],
        )
    _ec2.call_ignoring(client, "DeleteInternetGateway", (), InternetGatewayId=gateway_id)


reconciler = InternetGatewayReconciler()
