"""Public and private subnets, one of each per availability zone.

State: ``availability_zones`` (the chosen AZs, in order), ``public_subnet_ids`` and
``private_subnet_ids`` (lists ordered like ``availability_zones``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import (
    PlannedAction,
    PlanVerb,
    ReconcileContext,
    ReconcileError,
)
from controlplane.providers.aws.reconcilers.vpc import current_vpc_id

KIND = "ec2:subnet"
MAX_AZS = 3
# AWS's smallest subnet is a /28; the public subnets are the VPC prefix + 4.
MAX_VPC_PREFIX = 24
PUBLIC_ELB_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"


def subnet_cidrs(
    vpc_cidr: str, az_count: int
) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv4Network]]:
    """(public, private) subnet CIDRs for ``az_count`` AZs, derived only from the VPC CIDR.

    The VPC is cut into quarters. Private subnet *i* is quarter *i*: EKS gives every pod a VPC
    address, so the private side gets nearly all the space (a /16 gives three /18s, 16k
    addresses each). The last quarter is cut into four again and public subnet *i* is piece
    *i* (a /16 gives /20s): public subnets hold only load balancers and NAT gateways.
    Same inputs, same CIDRs — a resumed or repeated run asks AWS for exactly the same ranges.
    """
    try:
        network = ipaddress.IPv4Network(vpc_cidr)
    except ValueError as exc:
        raise ReconcileError("invalid_cidr", f"VPC CIDR {vpc_cidr!r} is not valid: {exc}") from exc
    if network.prefixlen > MAX_VPC_PREFIX:
        raise ReconcileError(
            "invalid_cidr",
            f"VPC CIDR {vpc_cidr} is too small: use a /{MAX_VPC_PREFIX} or larger so each AZ "
            "gets a public and a private subnet.",
        )
    if not 1 <= az_count <= MAX_AZS:
        raise ReconcileError(
            "invalid_request", f"availability_zones must be 1 to {MAX_AZS}, not {az_count}."
        )
    quarters = list(network.subnets(prefixlen_diff=2))
    public_pieces = list(quarters[3].subnets(prefixlen_diff=2))
    return public_pieces[:az_count], quarters[:az_count]


@dataclass(frozen=True)
class WantedSubnet:
    tier: str  # "public" | "private"
    az: str
    cidr: str
    name: str

    @property
    def role_tag(self) -> str:
        return PUBLIC_ELB_TAG if self.tier == "public" else INTERNAL_ELB_TAG


def wanted_subnets(ctx: ReconcileContext, azs: list[str]) -> list[WantedSubnet]:
    public, private = subnet_cidrs(ctx.spec.vpc_cidr, len(azs))
    wanted = []
    for tier, cidrs in (("public", public), ("private", private)):
        for az, cidr in zip(azs, cidrs, strict=True):
            wanted.append(
                WantedSubnet(tier, az, str(cidr), ctx.owner.resource_name(f"{tier}-{az}"))
            )
    return wanted


def _owned_subnets(ctx: ReconcileContext) -> dict[str, list[Resource]]:
    return _ec2.by_name(_ec2.describe_owned(ctx, "DescribeSubnets", "Subnets"))


def _recorded_ids(ctx: ReconcileContext) -> list[str | None]:
    public = ctx.state.get("public_subnet_ids") or []
    private = ctx.state.get("private_subnet_ids") or []
    return [*public, *private]


def current_subnets(ctx: ReconcileContext) -> dict[tuple[str, str], str]:
    """{(tier, az): subnet id} of the subnets that exist now (looked up by tag)."""
    azs = _ec2.availability_zones(ctx)
    owned = _owned_subnets(ctx)
    found = {}
    for want in wanted_subnets(ctx, azs):
        keep, _ = _ec2.choose(owned.get(want.name, []), "SubnetId", _recorded_ids(ctx))
        if keep is not None:
            found[(want.tier, want.az)] = str(keep["SubnetId"])
    return found


def _drift(want: WantedSubnet, subnet: Resource) -> list[str]:
    drift = []
    if _ec2.tag_map(subnet).get(want.role_tag) != "1":
        drift.append(f"tag {want.role_tag}=1")
    if want.tier == "public" and not subnet.get("MapPublicIpOnLaunch"):
        drift.append("map public IPs on launch")
    return drift


class SubnetsReconciler:
    name = "subnets"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        azs = _ec2.availability_zones(ctx)
        owned = _owned_subnets(ctx)
        actions = []
        for want in wanted_subnets(ctx, azs):
            keep, extras = _ec2.choose(owned.get(want.name, []), "SubnetId", _recorded_ids(ctx))
            if keep is None:
                detail = f"{want.tier} {want.cidr} in {want.az}"
                actions.append(PlannedAction("create", KIND, want.name, detail))
                continue
            for extra in extras:
                actions.append(
                    PlannedAction("delete", KIND, want.name, f"duplicate {extra['SubnetId']}")
                )
            drift = _drift(want, keep)
            verb: PlanVerb = "update" if drift else "none"
            actions.append(
                PlannedAction(verb, KIND, want.name, ", ".join(drift) or keep["SubnetId"])
            )
        return actions

    def ensure(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        azs = _ec2.availability_zones(ctx)
        if ctx.state.get("availability_zones") != azs:
            ctx.remember("availability_zones", azs)
        vpc_id = current_vpc_id(ctx)
        if vpc_id is None:
            raise ReconcileError(
                "dependency_missing", "The compute plane's VPC does not exist yet."
            )
        owned = _owned_subnets(ctx)
        ids: dict[str, list[str]] = {"public": [], "private": []}
        created = 0
        for want in wanted_subnets(ctx, azs):
            keep, extras = _ec2.choose(owned.get(want.name, []), "SubnetId", _recorded_ids(ctx))
            if keep is None:
                keep = self._create(ctx, vpc_id, want)
                created += 1
                # Recorded as soon as AWS answers, before the next create can fail or crash.
                ctx.remember(f"{want.tier}_subnet_ids", [*ids[want.tier], keep["SubnetId"]])
            for extra in extras:
                _ec2.call_ignoring(client, "DeleteSubnet", (), SubnetId=extra["SubnetId"])
            ids[want.tier].append(str(keep["SubnetId"]))
            self._converge(ctx, want, keep)
        for tier, tier_ids in ids.items():
            if ctx.state.get(f"{tier}_subnet_ids") != tier_ids:
                ctx.remember(f"{tier}_subnet_ids", tier_ids)
        return f"{len(azs)} AZs ({', '.join(azs)}): {created} subnet(s) created"

    def _create(self, ctx: ReconcileContext, vpc_id: str, want: WantedSubnet) -> Resource:
        client = _ec2.ec2(ctx)
        # No client token on CreateSubnet; a retried create of the same CIDR answers
        # InvalidSubnet.Conflict, and then the Name tag finds the subnet the first try made.
        answer = _ec2.call_ignoring(
            client,
            "CreateSubnet",
            ("InvalidSubnet.Conflict",),
            VpcId=vpc_id,
            CidrBlock=want.cidr,
            AvailabilityZone=want.az,
            TagSpecifications=_ec2.tag_specifications(
                ctx, "subnet", want.name, **{want.role_tag: "1"}
            ),
        )
        found = _owned_subnets(ctx).get(want.name, [])
        preferred = [answer["Subnet"]["SubnetId"]] if answer else []
        keep, extras = _ec2.choose(found, "SubnetId", preferred)
        if keep is None:
            raise ReconcileError(
                "invalid_cidr",
                f"Subnet {want.cidr} in {want.az} conflicts with a subnet Lakeplane does not "
                "manage; choose a VPC CIDR that does not overlap it.",
            )
        for extra in extras:
            _ec2.call_ignoring(client, "DeleteSubnet", (), SubnetId=extra["SubnetId"])
        return keep

    def _converge(self, ctx: ReconcileContext, want: WantedSubnet, subnet: Resource) -> None:
        client = _ec2.ec2(ctx)
        subnet_id = subnet["SubnetId"]
        if _ec2.tag_map(subnet).get(want.role_tag) != "1":
            _ec2.call(
                client,
                "CreateTags",
                Resources=[subnet_id],
                Tags=[{"Key": want.role_tag, "Value": "1"}],
            )
        if want.tier == "public" and not subnet.get("MapPublicIpOnLaunch"):
            _ec2.call(
                client,
                "ModifySubnetAttribute",
                SubnetId=subnet_id,
                MapPublicIpOnLaunch={"Value": True},
            )

    def delete(self, ctx: ReconcileContext) -> str:
        client = _ec2.ec2(ctx)
        found = _ec2.describe_owned(ctx, "DescribeSubnets", "Subnets")
        for subnet in found:
            # DependencyViolation (a NAT gateway or ENI still inside) becomes WaitFor.
            _ec2.call_ignoring(client, "DeleteSubnet", (), SubnetId=subnet["SubnetId"])
        for key in ("public_subnet_ids", "private_subnet_ids"):
            if ctx.state.get(key) is not None:
                ctx.forget(key)
        return f"deleted {len(found)} subnet(s)" if found else "no subnet left"


reconciler = SubnetsReconciler()
