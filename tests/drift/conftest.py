"""A ready compute plane in the emulator with a simulated agent (the clusters' fixtures), and
helpers that change the customer's account behind Lakeplane's back, as a customer would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from controlplane.computeplanes import drift
from controlplane.computeplanes.tasks import send_check
from controlplane.sandbox.customers import admin_client
from tests.clusters.conftest import (  # noqa: F401  fixtures
    ready_plane,
    sim_agent,
    verified_account,
)

INTERVAL = 60.0


@pytest.fixture
def drift_checks(settings, eager_celery_tasks):
    """Runs the ``check-drift`` beat task as beat would, one interval apart (shortened)."""
    settings.LAKEPLANE_DRIFT_INTERVAL_SECONDS = INTERVAL
    clock = {"now": timezone.now()}

    def tick() -> drift.Dispatched:
        # The first tick gives each new resource its phase; one interval later it is due.
        clock["now"] += timedelta(seconds=INTERVAL + 1)
        return drift.dispatch(now=clock["now"], send=send_check)

    drift.dispatch(now=clock["now"], send=send_check)
    return tick


@pytest.fixture
def eager_celery_tasks(settings):
    from controlplane.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def delete_vpc(sandbox: Any, vpc_id: str) -> None:
    """What the VPC console's "Delete VPC" does: its NAT gateways, internet gateway, subnets,
    route tables and security groups go with it."""
    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    for nat in ec2.describe_nat_gateways(Filters=in_vpc)["NatGateways"]:
        ec2.delete_nat_gateway(NatGatewayId=nat["NatGatewayId"])
        # The console offers to release the NAT gateways' Elastic IPs too.
        for address in nat.get("NatGatewayAddresses", []):
            ec2.release_address(AllocationId=address["AllocationId"])
    attached = [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    for igw in ec2.describe_internet_gateways(Filters=attached)["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    for table in ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]:
        if any(a.get("Main") for a in table.get("Associations", [])):
            continue
        for association in table.get("Associations", []):
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for subnet in ec2.describe_subnets(Filters=in_vpc)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    groups = [
        g
        for g in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]
        if g["GroupName"] != "default"
    ]
    for group in groups:
        if group["IpPermissions"]:
            ec2.revoke_security_group_ingress(
                GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
            )
    for group in groups:
        ec2.delete_security_group(GroupId=group["GroupId"])
    ec2.delete_vpc(VpcId=vpc_id)
