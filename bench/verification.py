"""Control-plane time and AWS calls per cloud-account verification, against the sandbox cloud.

    .venv/bin/python bench/verification.py [--runs 20]

Starts the emulator in-process on a free loopback port, seeds one customer role from the
CloudFormation template, then runs verify_role ``--runs`` times (after one warm-up) and prints
the median and p90 wall time per verification and the AWS calls counted both by the client and
by the emulator's call log. The emulator shares the process, so the time includes moto's work:
an upper bound on what the control plane spends, not a measure of AWS latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3

from controlplane.providers.aws import generate_external_id
from controlplane.providers.aws.credentials import AwsClients, AwsConfig
from controlplane.providers.aws.verification import verify_role
from controlplane.sandbox.control import SandboxControl
from controlplane.sandbox.customers import create_customer_role
from controlplane.sandbox.server import SandboxCloud


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    cloud = SandboxCloud(port=0).start()
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

        def once() -> tuple[float, int]:
            started = time.perf_counter()
            result = verify_role(
                clients, role_arn=role.role_arn, external_id=external_id, org_slug="bench"
            )
            elapsed = time.perf_counter() - started
            if not result.ok:
                raise SystemExit(f"verification failed: {result.failure_reasons}")
            return elapsed, result.aws_calls

        once()  # warm-up: botocore loads service models once per process
        control.clear_calls()
        samples = [once() for _ in range(args.runs)]
        emulator_calls = len(control.calls(account=role.account_id))
    finally:
        cloud.stop()

    times = sorted(t for t, _ in samples)
    calls = {c for _, c in samples}
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"runs: {args.runs}")
    print(f"median_ms: {statistics.median(times) * 1000:.1f}")
    print(f"p90_ms: {p90 * 1000:.1f}")
    print(f"aws_calls_per_verification (client): {sorted(calls)}")
    print(f"aws_calls_per_verification (emulator log): {emulator_calls / args.runs:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
