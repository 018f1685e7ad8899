"""Route tables: a public one (0.0.0.0/0 → internet gateway) for the public subnets, and private
ones (0.0.0.0/0 → NAT gateway) — one per AZ, or one shared when ``nat_mode="single"``.

State: ``public_route_table_id``, ``private_route_table_ids`` (ordered by AZ; one entry in
"single" mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    PlanVerb,
    ReconcileContext,
    ReconcileError,
)
from controlplane.providers.aws.reconcilers.internet_gateway import current_internet_gateway_id
from controlplane.providers.aws.reconcilers.nat_gateways import current_nat_gateways
from controlplane.providers.aws.reconcilers.subnets import current_subnets
from controlplane.providers.aws.reconcilers.vpc import current_vpc_id

KIND = "ec2:route-table"
DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class WantedTable:
    name: str
    tier: str  # "public" | "private"
    azs: tuple[str, ...]  # whose subnets (of this tier) it is associated with
    target_key: str  # "GatewayId" | "NatGatewayId"
    target: str | None  # None: the gateway does not exist (yet)


def wanted_tables(ctx: ReconcileContext) -> list[WantedTable]:
    azs = _ec2.availability_zones(ctx)
    owner = ctx.owner
    wanted = [
        WantedTable(
            owner.resource_name("public-rt"),
            "public",
            tuple(azs),
            "GatewayId",
            current_internet_gateway_id(ctx),
        )
    ]
    nats = current_nat_gateways(ctx)
    if ctx.spec.nat_mode == "single":
        shared = nats.get(azs[0])
        wanted.append(
            WantedTable(
                owner.resource_name("private-rt"), "private", tuple(azs), "NatGatewayId", shared
            )
        )
    else:
        for az in azs:
            wanted.append(
                WantedTable(
                    owner.resource_name(f"private-rt-{az}"),
                    "private",
                    (az,),
                    "NatGatewayId",
                    nats.get(az),
                )
            )
    return wanted


def _owned_tables(ctx: ReconcileContext) -> dict[str, list[Resource]]:
    return _ec2.by_name(_ec2.describe_owned(ctx, "DescribeRouteTables", "RouteTables"))


def _recorded(ctx: ReconcileContext) -> list[str | None]:
    return [
        ctx.state.get("public_route_table_id"),
        *(ctx.state.get("private_route_table_ids") or []),
    ]


def _default_route_ok(table: Resource, want: WantedTable) -> bool:
    for route in table.get("Routes") or []:
        if route.get("DestinationCidrBlock") == DEFAULT_ROUTE:
            return route.get(want.target_key) == want.target and route.get("State") != "blackhole"
    return False


def _associated_subnets(table: Resource) -> set[str]:
    return {a["SubnetId"] for a in table.get("Associations") or [] if a.get("SubnetId")}


class RouteTablesReconciler:
    name = "route_tables"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        owned = _owned_tables(ctx)
        subnets = current_subnets(ctx)
        actions = []
        for want in wanted_tables(ctx):
            target = "internet gateway" if want.tier == "public" else "NAT gateway"
            table, extras = _ec2.choose(owned.get(want.name, []), "RouteTableId", _recorded(ctx))
            if table is None:
                detail = (
                    f"{DEFAULT_ROUTE} → {target}, for {want.tier} subnets in {', '.join(want.azs)}"
                )
                actions.append(PlannedAction("create", KIND, want.name, detail))
                continue
            for extra in extras:
                actions.append(
                    PlannedAction("delete", KIND, want.name, f"duplicate {extra['RouteTableId']}")
                )
            drift = []
            if not _default_route_ok(table, want):
                drift.append(f"route {DEFAULT_ROUTE} → {target}")
            wanted_subnets = {subnets.get((want.tier, az)) for az in want.azs}
            if wanted_subnets - _associated_subnets(table):
                drift.append("subnet associations")
            verb: PlanVerb = "update" if drift else "none"
            actions.append(
                PlannedAction(verb, KIND, want.name, ", ".join(drift) or table["RouteTableId"])
            )
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        vpc_id = current_vpc_id(ctx)
        if vpc_id is None:
            raise ReconcileError(
                "dependency_missing", "The compute plane's VPC does not exist yet."
            )
        subnets = current_subnets(ctx)
        owned = _owned_tables(ctx)
        public_id: str | None = None
        private_ids: list[str] = []
        for want in wanted_tables(ctx):
            if want.target is None:
                gateway = "internet gateway" if want.tier == "public" else "NAT gateway"
                raise ReconcileError(
                    "dependency_missing", f"The {gateway} for {want.name} does not exist yet."
                )
            table, extras = _ec2.choose(owned.get(want.name, []), "RouteTableId", _recorded(ctx))
            if table is None:
                table = self._create(ctx, vpc_id, want)
                if want.tier == "public":
                    ctx.remember("public_route_table_id", table["RouteTableId"])
                else:
                    ctx.remember("private_route_table_ids", [*private_ids, table["RouteTableId"]])
            for extra in extras:
                _delete_table(_ec2.ec2(ctx), extra)
            self._converge(ctx, table, want, subnets)
            if want.tier == "public":
                public_id = str(table["RouteTableId"])
            else:
                private_ids.append(str(table["RouteTableId"]))
        if ctx.state.get("public_route_table_id") != public_id:
            ctx.remember("public_route_table_id", public_id)
        if ctx.state.get("private_route_table_ids") != private_ids:
            ctx.remember("private_route_table_ids", private_ids)
        return f"public {public_id}; private {', '.join(private_ids)}"

    def _create(self, ctx: ReconcileContext, vpc_id: str, want: WantedTable) -> Resource:
        client = _ec2.ec2(ctx)
        return _ec2.create_then_dedupe(
            ctx,
            lambda: _ec2.call(
                client,
                "CreateRouteTable",
                VpcId=vpc_id,
                TagSpecifications=_ec2.tag_specifications(ctx, "route-table", want.name),
            )["RouteTable"],
            lambda: _owned_tables(ctx).get(want.name, []),
            "RouteTableId",
            lambda extra: _delete_table(client, extra),
        )

    def _converge(
        self,
        ctx: ReconcileContext,
        table: Resource,
        want: WantedTable,
        subnets: dict[tuple[str, str], str],
    ) -> None:
        client = _ec2.ec2(ctx)
        table_id = table["RouteTableId"]
        if not _default_route_ok(table, want):
            route = {
                "RouteTableId": table_id,
                "DestinationCidrBlock": DEFAULT_ROUTE,
                want.target_key: want.target,
            }
            # A route that exists (retried create, or pointing at a replaced gateway) is replaced.
            if _ec2.call_ignoring(client, "CreateRoute", ("RouteAlreadyExists",), **route) is None:
                _ec2.call(client, "ReplaceRoute", **route)
        associated = _associated_subnets(table)
        for az in want.azs:
            subnet_id = subnets.get((want.tier, az))
            if subnet_id is None:
                raise ReconcileError(
                    "dependency_missing", f"The {want.tier} subnet in {az} does not exist yet."
                )
            if subnet_id not in associated:
                self._associate(ctx, table_id, subnet_id)

    def _associate(self, ctx: ReconcileContext, table_id: str, subnet_id: str) -> None:
        client = _ec2.ec2(ctx)
        answer = _ec2.call_ignoring(
            client,
            "AssociateRouteTable",
            ("Resource.AlreadyAssociated",),
            RouteTableId=table_id,
            SubnetId=subnet_id,
        )
        if answer is not None:
            return
        # Already associated: with this table (a retried call) is done; with another, move it.
        current = _ec2.call(
            client,
            "DescribeRouteTables",
            Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}],
        )["RouteTables"]
        for other in current:
            for association in other.get("Associations") or []:
                if association.get("SubnetId") == subnet_id and other["RouteTableId"] != table_id:
                    _ec2.call(
                        client,
                        "ReplaceRouteTableAssociation",
                        AssociationId=association["RouteTableAssociationId"],
                        RouteTableId=table_id,
                    )

    def delete(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        found = [t for group in _owned_tables(ctx).values() for t in group]
        for table in found:
            _delete_table(client, table)
        for key in ("public_route_table_id", "private_route_table_ids"):
            if ctx.state.get(key) is not None:
                ctx.forget(key)
        return f"deleted {len(found)} route table(s)" if found else "no route table left"


def _delete_table(client: object, table: Resource) -> None:
    for association in table.get("Associations") or []:
        if not association.get("Main"):
            _ec2.call_ignoring(
                client,
                "DisassociateRouteTable",
                (),
                AssociationId=association["RouteTableAssociationId"],
            )
    _ec2.call_ignoring(client, "DeleteRouteTable", (), RouteTableId=table["RouteTableId"])


reconciler = RouteTablesReconciler()
