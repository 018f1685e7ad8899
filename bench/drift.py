"""AWS calls and time per drift check of a compute plane, against the sandbox cloud.

    .venv/bin/python bench/drift.py [--clusters 0,10,40] [--runs 5]

Starts the emulator in-process on a free loopback port, seeds one customer role, builds one
compute plane with the reconcilers Lakeplane uses (network, IAM, EKS, system node group, Pod
Identity, buckets), then adds clusters (two node groups each) in steps. At each size it runs the
drift check (``inspect_compute_plane``) ``--runs`` times and, in the same run, the reconcilers'
own read-only ``plan`` of the same plane and its node groups (what a check built on the dry
run would cost), and
prints AWS calls per check from the client's counter and from the emulator's call log, the
mutating calls (must be 0), and the median wall time. The emulator shares the process, so the
time includes moto's work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from controlplane.providers.aws import generate_external_id
from controlplane.providers.aws.credentials import AwsClients, AwsConfig, RoleTarget
from controlplane.providers.aws.drift import (
    MAX_CALLS_PER_PLANE,
    ExpectedNodeGroup,
    inspect_compute_plane,
)
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    ReconcileContext,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.network import NETWORK_RECONCILERS
from controlplane.providers.aws.reconcilers.nodegroup import cluster_node_groups
from controlplane.providers.aws.reconcilers.platform import PLATFORM_RECONCILERS
from controlplane.providers.aws.reconcilers.systemnodes import GROUP_NAME
from controlplane.sandbox.control import SandboxControl
from controlplane.sandbox.customers import create_customer_role
from controlplane.sandbox.server import SandboxCloud

PLANE = "cp_bench"
RECONCILERS = [*NETWORK_RECONCILERS, *PLATFORM_RECONCILERS]


def converge(call: Any) -> None:
    for _ in range(20):
        try:
            call()
            return
        except WaitFor:
            continue
    raise SystemExit("a reconciler never converged")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", default="0,10,40")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    steps = sorted(int(n) for n in args.clusters.split(","))

    cloud = SandboxCloud(port=0).start()
    rows = []
    try:
        control = SandboxControl(cloud.endpoint_url)
        external_id = generate_external_id()
        role = create_customer_role(cloud.endpoint_url, external_id=external_id)
        clients = AwsClients(
            AwsConfig(endpoint_url=cloud.endpoint_url),
            base_session=boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy key
                region_name="us-east-1",
            ),
        )
        target = RoleTarget("acct_bench", role.role_arn, external_id, "lakeplane-bench")

        def client(service: str) -> Any:
            return clients.client(service, role=target)

        owner = Ownership(org_id="org_bench", compute_plane_id=PLANE)
        ctx = ReconcileContext(
            clients=client, owner=owner, spec=ComputePlaneSpec(name="bench", region="us-east-1")
        )
        for reconciler in RECONCILERS:
            converge(lambda r=reconciler: r.ensure(ctx))

        expected = [ExpectedNodeGroup(GROUP_NAME, "the compute plane")]
        groups: list[Any] = []
        built = 0

        def calls_of(fn: Any) -> tuple[int, int, float]:
            control.clear_calls()
            started = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - started
            log = control.calls(account=role.account_id)
            return len(log), sum(c.mutating for c in log), elapsed

        for size in steps:
            while built < size:
                cluster_id = f"cl_bench{built:03d}"
                label = f"lakeplane-{cluster_id}".replace("_", "-")
                for group in cluster_node_groups(
                    cluster_id=cluster_id,
                    label=label,
                    coordinator_instance_type="m6i.xlarge",
                    worker_instance_type="r6i.xlarge",
                    spot=False,
                    workers_min=1,
                    workers_max=4,
                    workers_desired=2,
                    running=True,
                ):
                    converge(lambda g=group: g.ensure(ctx))
                    groups.append(group)
                    expected.append(ExpectedNodeGroup(group.spec.name, cluster_id))
                built += 1

            def check() -> int:
                inspection = inspect_compute_plane(
                    clients,
                    role_arn=role.role_arn,
                    external_id=external_id,
                    session_name="lakeplane-bench-drift",
                    region="us-east-1",
                    owner=owner,
                    state=dict(ctx.state),
                    node_groups=expected,
                )
                if inspection.findings:
                    raise SystemExit(f"unexpected findings: {inspection.findings}")
                return inspection.aws_calls

            def plan() -> None:
                for reconciler in [*RECONCILERS, *groups]:
                    reconciler.plan(ctx)

            check()  # warm-up: botocore loads service models once per process
            samples = [calls_of(check) for _ in range(args.runs)]
            client_calls = check()
            plan_calls, plan_mutating, plan_time = calls_of(plan)
            rows.append(
                {
                    "clusters": size,
                    "node_groups": len(expected),
                    "check_calls_client": client_calls,
                    "check_calls_emulator": max(s[0] for s in samples),
                    "check_mutating": max(s[1] for s in samples),
                    "check_ms": statistics.median(s[2] for s in samples) * 1000,
                    "plan_calls": plan_calls,
                    "plan_mutating": plan_mutating,
                    "plan_ms": plan_time * 1000,
                }
            )
    finally:
        cloud.stop()

    print(f"bound (MAX_CALLS_PER_PLANE): {MAX_CALLS_PER_PLANE}")
    header = (
        "clusters  node_groups  check_calls(client/emulator)  mutating  check_ms  "
        "plan_calls  plan/check  plan_ms"
    )
    print(header)
    failed = False
    for r in rows:
        ratio = r["plan_calls"] / r["check_calls_emulator"]
        print(
            f"{r['clusters']:>8}  {r['node_groups']:>11}  "
            f"{r['check_calls_client']:>14}/{r['check_calls_emulator']:<13}  "
            f"{r['check_mutating']:>8}  {r['check_ms']:>8.1f}  {r['plan_calls']:>10}  "
            f"{ratio:>9.1f}x  {r['plan_ms']:>7.1f}"
        )
        failed |= r["check_mutating"] > 0 or r["check_calls_emulator"] > MAX_CALLS_PER_PLANE
    if failed:
        print("FAILED: a check changed something or exceeded the bound", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
