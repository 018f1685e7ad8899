"""Elastic IPs and NAT gateways: one per AZ (``nat_mode="per_az"``) or one shared ("single").

State: ``eip_allocation_ids`` and ``nat_gateway_ids`` (lists ordered by AZ; one entry in
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
    WaitFor,
)
from controlplane.providers.aws.reconcilers.subnets import current_subnets

NAT_KIND = "ec2:nat-gateway"
EIP_KIND = "ec2:elastic-ip"
LIVE_STATES = {"pending", "available"}
GONE_STATES = {"deleted", "failed"}
# A NAT gateway takes one to a few minutes to become available or deleted.
NAT_WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class WantedNat:
    az: str  # the AZ whose public subnet holds it
    name: str
    eip_name: str


def wanted_nats(ctx: ReconcileContext) -> list[WantedNat]:
    azs = _ec2.availability_zones(ctx)
    if ctx.spec.nat_mode == "single":
        return [WantedNat(azs[0], ctx.owner.resource_name("nat"), ctx.owner.resource_name("eip"))]
    return [
        WantedNat(az, ctx.owner.resource_name(f"nat-{az}"), ctx.owner.resource_name(f"eip-{az}"))
        for az in azs
    ]


def _owned_nats(ctx: ReconcileContext) -> list[Resource]:
    return _ec2.describe_owned(ctx, "DescribeNatGateways", "NatGateways")


def _owned_addresses(ctx: ReconcileContext) -> dict[str, list[Resource]]:
    return _ec2.by_name(_ec2.describe_owned(ctx, "DescribeAddresses", "Addresses"))


def _live(nats: list[Resource]) -> dict[str, list[Resource]]:
    return _ec2.by_name(n for n in nats if n.get("State") in LIVE_STATES)


def _nat_allocation_ids(nats: list[Resource]) -> list[str]:
    return [
        a["AllocationId"]
        for n in nats
        if n.get("State") in LIVE_STATES
        for a in n.get("NatGatewayAddresses") or []
        if a.get("AllocationId")
    ]


def current_nat_gateways(ctx: ReconcileContext) -> dict[str, str]:
    """{AZ the NAT serves: NAT gateway id}; in "single" mode every AZ maps to the one NAT."""
    live = _live(_owned_nats(ctx))
    recorded = ctx.state.get("nat_gateway_ids") or []
    by_az: dict[str, str] = {}
    for want in wanted_nats(ctx):
        keep, _ = _ec2.choose(live.get(want.name, []), "NatGatewayId", recorded)
        if keep is not None:
            by_az[want.az] = str(keep["NatGatewayId"])
    if ctx.spec.nat_mode == "single" and by_az:
        only = next(iter(by_az.values()))
        return dict.fromkeys(_ec2.availability_zones(ctx), only)
    return by_az


class NatGatewaysReconciler:
    name = "nat_gateways"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        nats = _owned_nats(ctx)
        live = _live(nats)
        addresses = _owned_addresses(ctx)
        actions = []
        for want in wanted_nats(ctx):
            eip, _ = _ec2.choose(addresses.get(want.eip_name, []), "AllocationId")
            if eip is None:
                actions.append(PlannedAction("create", EIP_KIND, want.eip_name, f"for {want.name}"))
            else:
                actions.append(PlannedAction("none", EIP_KIND, want.eip_name, eip["AllocationId"]))
            nat, extras = _ec2.choose(live.get(want.name, []), "NatGatewayId")
            if nat is None:
                actions.append(PlannedAction("create", NAT_KIND, want.name, f"in {want.az}"))
                continue
            for extra in extras:
                actions.append(
                    PlannedAction(
                        "delete", NAT_KIND, want.name, f"duplicate {extra['NatGatewayId']}"
                    )
                )
            verb: PlanVerb = "wait" if nat.get("State") == "pending" else "none"
            actions.append(
                PlannedAction(
                    verb, NAT_KIND, want.name, f"{nat['NatGatewayId']} {nat.get('State')}"
                )
            )
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        public_subnets = {
            az: sid for (tier, az), sid in current_subnets(ctx).items() if tier == "public"
        }
        nats = _owned_nats(ctx)
        live = _live(nats)
        addresses = _owned_addresses(ctx)
        in_use = _nat_allocation_ids(nats)
        allocation_ids: list[str] = []
        nat_ids: list[str] = []
        pending: list[str] = []
        for want in wanted_nats(ctx):
            if want.az not in public_subnets:
                raise ReconcileError(
                    "dependency_missing", f"The public subnet in {want.az} does not exist yet."
                )
            allocation_id = self._ensure_address(ctx, want, addresses, in_use, allocation_ids)
            nat, extras = _ec2.choose(
                live.get(want.name, []),
                "NatGatewayId",
                [
                    *(ctx.state.get("nat_gateway_ids") or []),
                    *_using(live.get(want.name, []), allocation_id),
                ],
            )
            if nat is None:
                nat = self._create_nat(ctx, want, public_subnets[want.az], allocation_id, nats)
                ctx.remember("nat_gateway_ids", [*nat_ids, nat["NatGatewayId"]])
            for extra in extras:
                _ec2.call_ignoring(
                    client, "DeleteNatGateway", (), NatGatewayId=extra["NatGatewayId"]
                )
            nat_ids.append(str(nat["NatGatewayId"]))
            if nat.get("State") == "pending":
                pending.append(str(nat["NatGatewayId"]))
        if ctx.state.get("eip_allocation_ids") != allocation_ids:
            ctx.remember("eip_allocation_ids", allocation_ids)
        if ctx.state.get("nat_gateway_ids") != nat_ids:
            ctx.remember("nat_gateway_ids", nat_ids)
        if pending:
            raise WaitFor(f"NAT gateway(s) {', '.join(pending)} pending", delay=NAT_WAIT_SECONDS)
        return f"{len(nat_ids)} NAT gateway(s) available ({ctx.spec.nat_mode})"

    def _ensure_address(
        self,
        ctx: ReconcileContext,
        want: WantedNat,
        addresses: dict[str, list[Resource]],
        in_use: list[str],
        allocation_ids: list[str],
    ) -> str:
        client = _ec2.ec2(ctx)
        candidates = addresses.get(want.eip_name, [])
        # Keep the address a NAT already uses; a lost AllocateAddress response leaves a spare.
        eip, extras = _ec2.choose(
            candidates, "AllocationId", [*in_use, *(ctx.state.get("eip_allocation_ids") or [])]
        )
        if eip is None:
            eip = _ec2.create_then_dedupe(
                ctx,
                lambda: _ec2.call(
                    client,
                    "AllocateAddress",
                    Domain="vpc",
                    TagSpecifications=_ec2.tag_specifications(ctx, "elastic-ip", want.eip_name),
                ),
                lambda: _owned_addresses(ctx).get(want.eip_name, []),
                "AllocationId",
                lambda extra: _release(client, extra),
            )
            ctx.remember("eip_allocation_ids", [*allocation_ids, eip["AllocationId"]])
        for extra in extras:
            if extra["AllocationId"] not in in_use:
                _release(client, extra)
        allocation_ids.append(str(eip["AllocationId"]))
        return str(eip["AllocationId"])

    def _create_nat(
        self,
        ctx: ReconcileContext,
        want: WantedNat,
        subnet_id: str,
        allocation_id: str,
        nats: list[Resource],
    ) -> Resource:
        client = _ec2.ec2(ctx)
        # The token makes a retried create after a lost response the same create. A failed NAT
        # is never adopted, so each failure seen moves the token on to ask for a fresh one.
        failures = sum(
            1 for n in nats if _ec2.name_of(n) == want.name and n.get("State") == "failed"
        )
        token = ctx.owner.client_token(f"nat-gateway:{want.name}:{allocation_id}:{failures}")
        name = want.name

        def create() -> Resource:
            answer = _ec2.call_ignoring(
                client,
                "CreateNatGateway",
                ("Resource.AlreadyAssociated",),
                SubnetId=subnet_id,
                AllocationId=allocation_id,
                ClientToken=token,
                TagSpecifications=_ec2.tag_specifications(ctx, "natgateway", name),
            )
            if answer is not None:
                return dict(answer["NatGateway"])
            # The address is taken: by our own NAT when a retry outran the client token
            # (the emulator ignores tokens), else by someone else's.
            live = _live(_owned_nats(ctx)).get(name, [])
            ours, _ = _ec2.choose(live, "NatGatewayId", _using(live, allocation_id))
            if ours is None:
                raise ReconcileError(
                    "conflict",
                    f"Elastic IP {allocation_id} is in use by a resource Lakeplane does not "
                    "manage; release it from that resource, then retry.",
                )
            return ours

        return _ec2.create_then_dedupe(
            ctx,
            create,
            lambda: _live(_owned_nats(ctx)).get(name, []),
            "NatGatewayId",
            lambda extra: _ec2.call_ignoring(
                client, "DeleteNatGateway", (), NatGatewayId=extra["NatGatewayId"]
            ),
        )

    def delete(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        nats = _owned_nats(ctx)
        for nat in nats:
            if nat.get("State") in LIVE_STATES:
                _ec2.call_ignoring(client, "DeleteNatGateway", (), NatGatewayId=nat["NatGatewayId"])
        # An Elastic IP cannot be released while its NAT gateway is still deleting.
        still = [n["NatGatewayId"] for n in _owned_nats(ctx) if n.get("State") not in GONE_STATES]
        if still:
            raise WaitFor(f"NAT gateway(s) {', '.join(still)} deleting", delay=NAT_WAIT_SECONDS)
        addresses = [a for group in _owned_addresses(ctx).values() for a in group]
        for address in addresses:
            _release(client, address)
        for key in ("nat_gateway_ids", "eip_allocation_ids"):
            if ctx.state.get(key) is not None:
                ctx.forget(key)
        deleted = sum(1 for n in nats if n.get("State") in LIVE_STATES)
        return f"deleted {deleted} NAT gateway(s), released {len(addresses)} Elastic IP(s)"


def _using(nats: list[Resource], allocation_id: str) -> list[str]:
    return [n["NatGatewayId"] for n in nats if allocation_id in _nat_allocation_ids([n])]


def _release(client: object, address: Resource) -> None:
    if address.get("AssociationId"):
        _ec2.call_ignoring(
            client, "DisassociateAddress", (), AssociationId=address["AssociationId"]
        )
    _ec2.call_ignoring(client, "ReleaseAddress", (), AllocationId=address["AllocationId"])


reconciler = NatGatewaysReconciler()
