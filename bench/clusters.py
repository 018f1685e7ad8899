"""Control-plane CPU and AWS calls per cluster lifecycle, against the sandbox emulator.

Run from the repository root::

    .venv/bin/python bench/clusters.py [--lifecycles 5]

1. prepares its own PostgreSQL database (``DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/lakeplane_clbench``; created if missing), migrates it and
   bootstraps an org;
2. starts the emulator as its own process (so its CPU is not counted), creates a customer role
   and builds one compute plane with the compute plane's own reconcilers;
3. runs ``--lifecycles`` cluster lifecycles (after one warm-up): create → resize to 5 → stop →
   start → restart → delete, each call through the REST API (Django's test client, in process),
   each operation driven delivery by delivery with the engine's ``claim_next_step`` /
   ``run_claimed_step`` (what ``advance_operation`` does in a worker), and an in-process agent that
   reads ``/api/agent/v1/desired-state`` and posts contract status reports after each wait;
4. prints the CPU seconds of this process per lifecycle and per phase (API + engine + agent API +
   boto3; the emulator is another process) and the AWS calls the emulator logged.

The figure excludes Celery's own message handling and the real agent's rendering (see
``bench/README.md`` for the render benchmark, if any); it includes the simulated agent's few
requests, which a real deployment spends in the agent API anyway.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from computeplanes import (  # noqa: E402  (bench/computeplanes.py: shared helpers)
    OUT_DIR,
    Processes,
    bench_env,
    emulator_healthy,
    ensure_database,
    free_port,
    manage,
    wait_for,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_clbench"
ORG_SLUG = "clbench"
OWNER_EMAIL = "clbench-owner@example.com"
PHASES = ("create", "resize", "stop", "start", "restart", "delete")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lifecycles", type=int, default=5)
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # No worker runs: messages go to an in-memory broker nobody reads; this script delivers.
    env = bench_env(database_url, "memory://", endpoint)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_database(database_url)
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap", "--org", ORG_SLUG, "--email", OWNER_EMAIL)

    processes = Processes()
    try:
        emulator = processes.start(
            "emulator",
            [sys.executable, "-m", "controlplane.sandbox", "serve", "--port", str(port)],
            env,
            OUT_DIR / "clusters-emulator.log",
        )
        wait_for(lambda: emulator_healthy(endpoint), "emulator", 60, emulator)
        os.environ.update(env)
        return run(args.lifecycles, endpoint, env)
    finally:
        processes.stop_all()


def run(lifecycles: int, endpoint: str, env: dict[str, str]) -> int:
    import django

    django.setup()
    from django.test.utils import setup_test_environment
    from django.utils import timezone
    from rest_framework.test import APIClient

    from controlplane.agentapi import ingest
    from controlplane.agentapi import services as agentapi
    from controlplane.cloudaccounts.models import CloudAccount
    from controlplane.clusters.models import Cluster
    from controlplane.computeplanes.models import ComputePlane
    from controlplane.computeplanes.workflows import RECONCILERS, context_for
    from controlplane.core.workflows import Outcome, claim_next_step, run_claimed_step
    from controlplane.providers.aws.external_id import generate_external_id
    from controlplane.providers.aws.reconcilers.base import WaitFor
    from controlplane.sandbox.control import SandboxControl
    from controlplane.sandbox.customers import create_customer_role, new_account_id
    from controlplane.tenancy.models import Membership, Organization

    setup_test_environment()  # the test client's host "testserver" is allowed
    org = Organization.objects.get(slug=ORG_SLUG)
    Cluster.objects.filter(organization=org).delete()
    ComputePlane.objects.filter(organization=org).delete()
    CloudAccount.objects.filter(organization=org).delete()
    owner = Membership.objects.get(organization=org, user__email=OWNER_EMAIL).user
    api = APIClient()
    api.force_authenticate(owner)

    account = CloudAccount.objects.create(
        organization=org,
        name="clbench",
        aws_account_id=new_account_id(),
        external_id=generate_external_id(),
    )
    role = create_customer_role(
        endpoint,
        external_id=account.external_id,
        account_id=account.aws_account_id,
        vendor_principal=env["LAKEPLANE_VENDOR_PRINCIPAL"],
    )
    account.role_arn, account.status = role.role_arn, "verified"
    account.save()
    plane = ComputePlane.objects.create(
        organization=org,
        cloud_account=account,
        name="clbench",
        region="us-east-1",
        kubernetes_version="1.31",
    )
    for reconciler in RECONCILERS:
        for _ in range(20):
            plane.refresh_from_db()
            try:
                reconciler.ensure(context_for(plane))
                break
            except WaitFor:
                time.sleep(0.2)
    plane.refresh_from_db()
    plane.status = "ready"
    plane.save(update_fields=["status"])

    token = agentapi.issue_bootstrap_token(plane)
    registered = (
        APIClient()
        .post(
            "/api/agent/v1/register",
            {"bootstrap_token": token, "agent_version": "bench", "kubernetes_version": "1.31"},
            format="json",
        )
        .json()
    )
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {registered['credential']}")

    def report() -> None:
        doc = agent.get("/api/agent/v1/desired-state", {"wait": 0}).json()
        now = timezone.now().isoformat()
        clusters = []
        for spec in doc["clusters"]:
            running = spec["state"] == "running"
            replicas = spec["workers"]["replicas"] if running else 0
            clusters.append(
                {
                    "id": spec["id"],
                    "phase": "running" if running else "stopped",
                    "coordinator_ready": running,
                    "workers_ready": replicas,
                    "workers_desired": replicas,
                    "observed_at": now,
                }
            )
        body = {
            "agent_id": registered["agent_id"],
            "report_id": uuid.uuid4().hex,
            "applied_version": doc["version"],
            "sent_at": now,
            "clusters": clusters,
        }
        answer = agent.post("/api/agent/v1/status", body, format="json")
        # 200 written at once; 202 buffered by write-behind ingestion (the PostgreSQL default,
        # controlplane/agentapi/ingest.py): write it now, as the flusher would within 0.2 s,
        # so the next step sees it (its CPU is the control plane's and is counted).
        assert answer.status_code in (200, 202), answer.content
        if answer.status_code == 202:
            assert ingest.buffer.flush().failed == 0

    def drive(response: Any) -> None:
        assert response.status_code == 202, response.content
        op = response.json()["operation"]["id"]
        for _ in range(100):
            claimed = claim_next_step(op)
            if isinstance(claimed, Outcome):
                assert claimed.done
                return
            outcome = run_claimed_step(claimed)
            if outcome.done:
                return
            if claimed.step.name == "wait_for_agent" and outcome.next_countdown:
                report()
        raise RuntimeError(f"{op} did not finish")

    base = f"/api/v1/orgs/{ORG_SLUG}/clusters"
    control = SandboxControl(endpoint)

    def lifecycle(n: int) -> dict[str, float]:
        cpu: dict[str, float] = {}

        def timed(phase: str, call: Any) -> None:
            started = time.process_time()
            drive(call())
            cpu[phase] = time.process_time() - started

        body = {
            "name": f"bench-{n}",
            "compute_plane": plane.id,
            "engine": "trino",
            "coordinator": {"instance_type": "m6i.xlarge"},
            "workers": {"instance_type": "r6i.2xlarge", "count": 3, "spot": True},
        }
        timed("create", lambda: api.post(base, body, format="json"))
        cluster_id = Cluster.objects.get(name=f"bench-{n}", deleted_at__isnull=True).id
        url = f"{base}/{cluster_id}"
        timed("resize", lambda: api.post(f"{url}/resize", {"workers": 5}, format="json"))
        timed("stop", lambda: api.post(f"{url}/stop"))
        timed("start", lambda: api.post(f"{url}/start"))
        timed("restart", lambda: api.post(f"{url}/restart"))
        timed("delete", lambda: api.delete(url))
        assert Cluster.objects.get(pk=cluster_id).status == "deleted"
        return cpu

    lifecycle(0)  # warm-up: botocore and Django load their models once per process
    calls_before = len(control.calls(account=account.aws_account_id))
    samples = [lifecycle(n) for n in range(1, lifecycles + 1)]
    aws_calls = (len(control.calls(account=account.aws_account_id)) - calls_before) / lifecycles

    totals = [sum(s.values()) for s in samples]
    print(f"lifecycles: {lifecycles} (create, resize 3->5, stop, start, restart, delete)")
    print(f"control-plane CPU per lifecycle, median: {statistics.median(totals) * 1000:.0f} ms")
    print(f"  min {min(totals) * 1000:.0f} ms, max {max(totals) * 1000:.0f} ms")
    for phase in PHASES:
        print(f"  {phase:8s} median {statistics.median(s[phase] for s in samples) * 1000:.0f} ms")
    print(f"AWS calls per lifecycle (emulator log): {aws_calls:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
