"""The network reconcilers against the emulator over HTTP: one of each, idempotent, lost
responses, teardown, plans, two compute planes side by side, errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from controlplane.providers.aws.reconcilers import nat_gateways, subnets
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    ReconcileContext,
    ReconcileError,
    Reconciler,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.network import NETWORK_RECONCILERS
from controlplane.sandbox.customers import admin_client
from controlplane.sandbox.pytest_plugin import Sandbox

BY_NAME = {r.name: r for r in NETWORK_RECONCILERS}
# What each reconciler creates for the default spec (2 AZs, one NAT per AZ), by resource kind.
EXPECTED = {
    "vpc": {"vpc": 1},
    "subnets": {"subnet": 4},
    "internet_gateway": {"igw": 1},
    "nat_gateways": {"eip": 2, "nat": 2},
    "route_tables": {"route_table": 3},
    "security_groups": {"sg": 2},
}
# The create call(s) whose response the drop_response fault loses.
CREATE_ACTIONS = {
    "vpc": ["CreateVpc"],
    "subnets": ["CreateSubnet"],
    "internet_gateway": ["CreateInternetGateway", "AttachInternetGateway"],
    "nat_gateways": ["AllocateAddress", "CreateNatGateway"],
    "route_tables": ["CreateRouteTable", "CreateRoute", "AssociateRouteTable"],
    "security_groups": ["CreateSecurityGroup", "AuthorizeSecurityGroupIngress"],
}
KINDS = ("vpc", "subnet", "igw", "eip", "nat", "route_table", "sg")

MakeCtx = Callable[..., ReconcileContext]


@pytest.fixture
def make_ctx(sandbox: Sandbox) -> MakeCtx:
    def make(
        compute_plane: str = "cp-1", account: str | None = None, **spec: Any
    ) -> ReconcileContext:
        account_id = account or sandbox.account_id
        cache: dict[str, Any] = {}

        def clients(service: str) -> Any:
            if service not in cache:
                cache[service] = admin_client(sandbox.endpoint_url, service, account_id)
            return cache[service]

        return ReconcileContext(
            clients=clients,
            owner=Ownership(org_id="org-1", compute_plane_id=compute_plane),
            spec=ComputePlaneSpec(name=compute_plane, region=sandbox.region, **spec),
        )

    return make


def ec2_of(ctx: ReconcileContext) -> Any:
    return ctx.clients("ec2")


def inventory(ctx: ReconcileContext) -> dict[str, list[dict[str, Any]]]:
    """Every resource of each network kind tagged with ctx's compute plane (NATs: not deleted)."""
    ec2 = ec2_of(ctx)
    filters = [{"Name": "tag:lakeplane:compute-plane", "Values": [ctx.owner.compute_plane_id]}]
    found = {
        "vpc": ec2.describe_vpcs(Filters=filters)["Vpcs"],
        "subnet": ec2.describe_subnets(Filters=filters)["Subnets"],
        "igw": ec2.describe_internet_gateways(Filters=filters)["InternetGateways"],
        "eip": ec2.describe_addresses(Filters=filters)["Addresses"],
        # The emulator ignores tag filters on NAT gateways: filter here too.
        "nat": [
            n
            for n in ec2.describe_nat_gateways(Filters=filters)["NatGateways"]
            if n["State"] not in {"deleted", "failed"}
        ],
        "route_table": ec2.describe_route_tables(Filters=filters)["RouteTables"],
        "sg": ec2.describe_security_groups(Filters=filters)["SecurityGroups"],
    }
    for kind, resources in found.items():
        found[kind] = [r for r in resources if ctx.owner.owns(r.get("Tags"))]
    return found


def counts(ctx: ReconcileContext) -> dict[str, int]:
    return {kind: len(resources) for kind, resources in inventory(ctx).items()}


def expected_counts(up_to: str | None) -> dict[str, int]:
    total = dict.fromkeys(KINDS, 0)
    for reconciler in NETWORK_RECONCILERS:
        for kind, n in EXPECTED[reconciler.name].items():
            total[kind] += n
        if reconciler.name == up_to:
            break
    return total if up_to else dict.fromkeys(KINDS, 0)


def converge(reconciler: Reconciler, ctx: ReconcileContext) -> str:
    """ensure() until it stops asking to wait (the workflow re-schedules; here we loop)."""
    for _ in range(10):
        try:
            return reconciler.ensure(ctx)
        except WaitFor:
            continue
    raise AssertionError(f"{reconciler.name} never converged")


def ensure_before(name: str, ctx: ReconcileContext) -> None:
    for reconciler in NETWORK_RECONCILERS:
        if reconciler.name == name:
            return
        converge(reconciler, ctx)


def ensure_all(ctx: ReconcileContext) -> None:
    for reconciler in NETWORK_RECONCILERS:
        converge(reconciler, ctx)


def delete_all(ctx: ReconcileContext) -> None:
    for reconciler in reversed(NETWORK_RECONCILERS):
        reconciler.delete(ctx)


def mutating_since(sandbox: Sandbox, seq: int, account: str | None = None) -> list[str]:
    calls = sandbox.control.calls(account=account or sandbox.account_id, since=seq)
    return [c.action for c in calls if c.mutating]


def last_seq(sandbox: Sandbox, account: str | None = None) -> int:
    calls = sandbox.control.calls(account=account or sandbox.account_id)
    return calls[-1].seq if calls else 0


NAMES = [r.name for r in NETWORK_RECONCILERS]


def test_network_reconcilers_are_in_dependency_order() -> None:
    assert NAMES == [
        "vpc",
        "subnets",
        "internet_gateway",
        "nat_gateways",
        "route_tables",
        "security_groups",
    ]


def test_subnet_cidrs_are_derived_from_the_vpc_cidr_without_overlap() -> None:
    public, private = subnets.subnet_cidrs("10.42.0.0/16", 3)
    assert [str(n) for n in private] == ["10.42.0.0/18", "10.42.64.0/18", "10.42.128.0/18"]
    assert [str(n) for n in public] == ["10.42.192.0/20", "10.42.208.0/20", "10.42.224.0/20"]
    vpc = ipaddress.IPv4Network("10.42.0.0/16")
    every = public + private
    assert all(n.subnet_of(vpc) for n in every)
    assert not any(a.overlaps(b) for i, a in enumerate(every) for b in every[i + 1 :])
    assert subnets.subnet_cidrs("172.16.0.0/20", 2) == subnets.subnet_cidrs("172.16.0.0/20", 2)


@pytest.mark.parametrize(
    ("cidr", "azs", "code"),
    [
        ("10.0.0.0/26", 2, "invalid_cidr"),
        ("10.0.0/16", 2, "invalid_cidr"),
        ("10.0.0.0/16", 4, "invalid_request"),
    ],
)
def test_subnet_cidrs_refuse_bad_input(cidr: str, azs: int, code: str) -> None:
    with pytest.raises(ReconcileError) as refused:
        subnets.subnet_cidrs(cidr, azs)
    assert refused.value.code == code


def test_ensure_builds_the_whole_network_tagged_and_wired(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    ensure_all(ctx)
    found = inventory(ctx)
    assert counts(ctx) == expected_counts("security_groups")
    ec2 = ec2_of(ctx)
    state = ctx.state
    vpc_id = state["vpc_id"]
    assert found["vpc"][0]["VpcId"] == vpc_id
    for attribute, key in (
        ("enableDnsSupport", "EnableDnsSupport"),
        ("enableDnsHostnames", "EnableDnsHostnames"),
    ):
        assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"] is True
    for kind, resources in found.items():
        for resource in resources:
            tags = {t["Key"]: t["Value"] for t in resource["Tags"]}
            assert tags["lakeplane:managed-by"] == "lakeplane", kind
            assert tags["lakeplane:org"] == "org-1", kind
            assert tags["Name"].startswith("lakeplane-cp-1-"), kind

    assert state["availability_zones"] == ["us-east-1a", "us-east-1b"]
    by_id = {s["SubnetId"]: s for s in found["subnet"]}
    public = [by_id[i] for i in state["public_subnet_ids"]]
    private = [by_id[i] for i in state["private_subnet_ids"]]
    assert [s["AvailabilityZone"] for s in public] == state["availability_zones"]
    assert [s["AvailabilityZone"] for s in private] == state["availability_zones"]
    assert all(s["MapPublicIpOnLaunch"] for s in public)
    assert not any(s["MapPublicIpOnLaunch"] for s in private)
    assert all({"Key": "kubernetes.io/role/elb", "Value": "1"} in s["Tags"] for s in public)
    assert all(
        {"Key": "kubernetes.io/role/internal-elb", "Value": "1"} in s["Tags"] for s in private
    )

    igw = found["igw"][0]
    assert igw["InternetGatewayId"] == state["internet_gateway_id"]
    assert [a["VpcId"] for a in igw["Attachments"]] == [vpc_id]
    nats = {n["NatGatewayId"]: n for n in found["nat"]}
    assert [nats[i]["SubnetId"] for i in state["nat_gateway_ids"]] == state["public_subnet_ids"]
    assert sorted(a["AllocationId"] for a in found["eip"]) == sorted(state["eip_allocation_ids"])

    tables = {t["RouteTableId"]: t for t in found["route_table"]}

    def default_route(table: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")

    def associated(table: dict[str, Any]) -> list[str]:
        return sorted(a["SubnetId"] for a in table["Associations"] if a.get("SubnetId"))

    public_rt = tables[state["public_route_table_id"]]
    assert default_route(public_rt)["GatewayId"] == igw["InternetGatewayId"]
    assert associated(public_rt) == sorted(state["public_subnet_ids"])
    for i, table_id in enumerate(state["private_route_table_ids"]):
        assert default_route(tables[table_id])["NatGatewayId"] == state["nat_gateway_ids"][i]
        assert associated(tables[table_id]) == [state["private_subnet_ids"][i]]

    groups = {g["GroupId"]: g for g in found["sg"]}
    cluster, nodes = state["cluster_security_group_id"], state["node_security_group_id"]

    def rules(group_id: str) -> set[tuple[str, int, int, str]]:
        return {
            (p["IpProtocol"], p.get("FromPort", -1), p.get("ToPort", -1), pair["GroupId"])
            for p in groups[group_id]["IpPermissions"]
            for pair in p["UserIdGroupPairs"]
        }

    assert {
        ("tcp", 443, 443, cluster),
        ("tcp", 10250, 10250, cluster),
        ("tcp", 1025, 65535, cluster),
    } <= rules(nodes)
    assert any(r[0] == "-1" and r[3] == nodes for r in rules(nodes))
    assert rules(cluster) == {("tcp", 443, 443, nodes)}


@pytest.mark.parametrize("name", NAMES)
def test_ensure_creates_exactly_its_resources_and_a_second_ensure_mutates_nothing(
    name: str, make_ctx: MakeCtx, sandbox: Sandbox
) -> None:
    ctx = make_ctx()
    ensure_before(name, ctx)
    converge(BY_NAME[name], ctx)
    assert counts(ctx) == expected_counts(name)
    seq = last_seq(sandbox)
    summary = BY_NAME[name].ensure(ctx)
    assert mutating_since(sandbox, seq) == [], summary
    assert counts(ctx) == expected_counts(name)


@pytest.mark.parametrize("name", NAMES)
def test_a_lost_create_response_leaves_exactly_one(
    name: str, make_ctx: MakeCtx, sandbox: Sandbox
) -> None:
    ctx = make_ctx()
    ensure_before(name, ctx)
    for action in CREATE_ACTIONS[name]:
        sandbox.control.add_fault("drop_response", service="ec2", action=action, count=1)
    converge(BY_NAME[name], ctx)
    fired = {f["actions"][0]: f["fired"] for f in sandbox.control.faults()}
    assert all(fired.values()), fired  # every listed create really lost its response
    assert counts(ctx) == expected_counts(name)
    # and what survived is fully converged: another ensure has nothing to do
    seq = last_seq(sandbox)
    BY_NAME[name].ensure(ctx)
    assert mutating_since(sandbox, seq) == []


@pytest.mark.parametrize("name", NAMES)
def test_each_delete_works_standalone_and_twice(
    name: str, make_ctx: MakeCtx, sandbox: Sandbox
) -> None:
    ctx = make_ctx()
    ensure_before(name, ctx)
    converge(BY_NAME[name], ctx)
    # A fresh context: the delete finds its resources by tag, not by recorded state.
    fresh = make_ctx()
    BY_NAME[name].delete(fresh)
    remaining = counts(ctx)
    for kind in EXPECTED[name]:
        assert remaining[kind] == 0, kind
    seq = last_seq(sandbox)
    BY_NAME[name].delete(fresh)
    assert mutating_since(sandbox, seq) == []


def test_delete_in_reverse_order_leaves_nothing_tagged(make_ctx: MakeCtx, sandbox: Sandbox) -> None:
    ctx = make_ctx()
    ensure_all(ctx)
    seq = last_seq(sandbox)
    delete_all(ctx)
    assert counts(ctx) == expected_counts(None)
    # Nothing was refused on the way (e.g. a revoke that matched no rule and was swallowed).
    calls = sandbox.control.calls(account=sandbox.account_id, since=seq)
    assert [(c.action, c.outcome) for c in calls if c.mutating and c.outcome != "ok"] == []
    assert all(
        ctx.state.get(k) is None for k in ("vpc_id", "nat_gateway_ids", "node_security_group_id")
    )
    seq = last_seq(sandbox)
    delete_all(ctx)
    assert mutating_since(sandbox, seq) == []


def test_vpc_delete_waits_while_something_is_still_inside(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    ensure_before("internet_gateway", ctx)  # VPC + subnets
    with pytest.raises(WaitFor, match="DependencyViolation"):
        BY_NAME["vpc"].delete(ctx)
    BY_NAME["subnets"].delete(ctx)
    BY_NAME["vpc"].delete(ctx)
    assert counts(ctx) == expected_counts(None)


def test_plan_lists_creates_on_an_empty_account_and_none_once_converged(
    make_ctx: MakeCtx, sandbox: Sandbox
) -> None:
    ctx = make_ctx()
    seq = last_seq(sandbox)
    planned = {r.name: [a.action for a in r.plan(ctx)] for r in NETWORK_RECONCILERS}
    assert mutating_since(sandbox, seq) == []
    assert counts(ctx) == expected_counts(None)
    for name, actions in planned.items():
        assert set(actions) == {"create"}, name
    assert len(planned["subnets"]) == 4
    assert len(planned["route_tables"]) == 3
    assert planned["nat_gateways"] == ["create"] * 4  # an EIP and a NAT per AZ

    ensure_all(ctx)
    for reconciler in NETWORK_RECONCILERS:
        actions = reconciler.plan(ctx)
        assert {a.action for a in actions} == {"none"}, (reconciler.name, actions)


def test_plan_sees_drift_and_ensure_repairs_it(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    ensure_all(ctx)
    ec2 = ec2_of(ctx)
    ec2.modify_vpc_attribute(VpcId=ctx.state["vpc_id"], EnableDnsHostnames={"Value": False})
    nodes = ctx.state["node_security_group_id"]
    group = ec2.describe_security_groups(GroupIds=[nodes])["SecurityGroups"][0]
    kubelet = next(p for p in group["IpPermissions"] if p.get("FromPort") == 10250)
    ec2.revoke_security_group_ingress(
        GroupId=nodes,
        IpPermissions=[
            {k: kubelet[k] for k in ("IpProtocol", "FromPort", "ToPort", "UserIdGroupPairs")}
        ],
    )
    assert 10250 not in {
        p.get("FromPort")
        for p in ec2.describe_security_groups(GroupIds=[nodes])["SecurityGroups"][0][
            "IpPermissions"
        ]
    }
    assert [a.action for a in BY_NAME["vpc"].plan(ctx)] == ["update"]
    assert "update" in {a.action for a in BY_NAME["security_groups"].plan(ctx)}
    ensure_all(ctx)
    for reconciler in NETWORK_RECONCILERS:
        assert {a.action for a in reconciler.plan(ctx)} == {"none"}, reconciler.name


def test_single_nat_mode_shares_one_nat_and_one_private_route_table(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(nat_mode="single", availability_zones=3)
    ensure_all(ctx)
    found = counts(ctx)
    assert (found["nat"], found["eip"], found["route_table"], found["subnet"]) == (1, 1, 2, 6)
    assert len(ctx.state["nat_gateway_ids"]) == 1
    assert len(ctx.state["private_route_table_ids"]) == 1
    table = next(
        t
        for t in inventory(ctx)["route_table"]
        if t["RouteTableId"] == ctx.state["private_route_table_ids"][0]
    )
    assert sorted(a["SubnetId"] for a in table["Associations"] if a.get("SubnetId")) == sorted(
        ctx.state["private_subnet_ids"]
    )
    delete_all(ctx)
    assert counts(ctx) == expected_counts(None)


def test_two_compute_planes_in_one_account_never_touch_each_other(
    make_ctx: MakeCtx, sandbox: Sandbox
) -> None:
    first, second = make_ctx("cp-a"), make_ctx("cp-b")
    ensure_all(first)
    ensure_all(second)
    before = {kind: sorted(str(r) for r in rs) for kind, rs in inventory(second).items()}
    assert counts(first) == counts(second) == expected_counts("security_groups")
    assert first.state["vpc_id"] != second.state["vpc_id"]

    # Converging the first again adopts only its own; deleting it removes only its own.
    seq = last_seq(sandbox)
    ensure_all(first)
    assert mutating_since(sandbox, seq) == []
    delete_all(first)
    assert counts(first) == expected_counts(None)
    after = {kind: sorted(str(r) for r in rs) for kind, rs in inventory(second).items()}
    assert after == before
    seq = last_seq(sandbox)
    ensure_all(second)
    assert mutating_since(sandbox, seq) == []


def test_access_denied_names_the_missing_permission(make_ctx: MakeCtx, sandbox: Sandbox) -> None:
    ctx = make_ctx()
    sandbox.control.add_fault("access_denied", service="ec2", action="CreateVpc")
    with pytest.raises(ReconcileError) as refused:
        BY_NAME["vpc"].ensure(ctx)
    assert refused.value.code == "permission_missing"
    assert "ec2:CreateVpc" in refused.value.message
    assert counts(ctx) == expected_counts(None)


def test_a_bad_vpc_cidr_is_a_clear_error(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(vpc_cidr="10.0.0.0/27")
    converge(BY_NAME["vpc"], ctx)
    with pytest.raises(ReconcileError) as refused:
        BY_NAME["subnets"].ensure(ctx)
    assert refused.value.code == "invalid_cidr"
    assert "10.0.0.0/27" in refused.value.message


def test_dependents_refuse_to_run_before_their_dependencies(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    with pytest.raises(ReconcileError) as refused:
        BY_NAME["subnets"].ensure(ctx)
    assert refused.value.code == "dependency_missing"
    converge(BY_NAME["vpc"], ctx)
    with pytest.raises(ReconcileError, match="public subnet"):
        nat_gateways.reconciler.ensure(ctx)
