"""The compute plane's network reconcilers, in dependency order (teardown runs them reversed)."""

from __future__ import annotations

from controlplane.providers.aws.reconcilers import (
    internet_gateway,
    nat_gateways,
    route_tables,
    security_groups,
    subnets,
    vpc,
)
from controlplane.providers.aws.reconcilers.base import Reconciler

NETWORK_RECONCILERS: list[Reconciler] = [
    vpc.reconciler,
    subnets.reconciler,
    internet_gateway.reconciler,
    nat_gateways.reconciler,
    route_tables.reconciler,
    security_groups.reconciler,
]
