"""Propagating one catalog change to 1, 10 and 50 attached clusters: SQL queries, time, AWS calls.

Run from the repository root::

    .venv/bin/python bench/catalog_propagation.py [--sizes 1,10,50] [--rounds 5] [--no-agent]

1. prepares its own PostgreSQL database (``DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/lakeplane_propbench``; created if missing), migrates it and
   bootstraps an org with an owner and an API token (``manage.py bootstrap``);
2. starts the emulator as its own process and creates the customer role in a fresh emulator
   account, which owns every compute plane below;
3. for each N and two layouts — (a) N clusters on one compute plane, (b) N compute planes with one
   cluster each — writes ready planes (with a warehouse bucket), running Trino and PrestoDB
   clusters (alternating), one ``postgresql`` catalog whose password is a Secrets Manager ARN,
   attached to every cluster with ``set_cluster_catalogs``, and publishes each plane once;
4. PATCHes the catalog's ``connection-url`` through ``PATCH /api/v1/orgs/{org}/catalogs/{id}``
   (Bearer token, Django's test client in process) ``--rounds`` times, counting the request's SQL
   queries (``CaptureQueriesContext``), its time, the time until every affected plane's stored
   desired state carries the new catalog version, the publishes per plane and the AWS calls the
   emulator logged meanwhile;
5. layout (a) with the largest N: an in-process agent (memory target, in-memory secret resolver)
   that talks to the agent API through the test client applies the change — Trino through
   ``DROP``/``CREATE CATALOG`` statements, PrestoDB through a rolling restart held "in progress"
   for one agent pass, then completed — and reports; the time runs from the PATCH's start until
   ``GET …/catalogs/{id}`` shows the new version live on every cluster.

The desired states are written inside the PATCH's transaction, so "until all desired states carry
the new version" is the request time plus one read to check it. The memory target completes a
rollout when told to: the agent figure is the control plane's and the agent's own work, not the
time Kubernetes needs to restart pods.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
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
    loadavg,
    machine,
    manage,
    wait_for,
)

from computeplane_agent.targets.base import KubeObject, ObjectRef  # noqa: E402
from computeplane_agent.targets.memory import MemoryTarget  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_propbench"
ORG_SLUG = "propbench"
OWNER_EMAIL = "propbench-owner@example.com"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:propbench-pg-AbCdEf"  # noqa: S105 (an ARN, not a value)
ENGINES = (("trino", "476"), ("presto", "0.292"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1,10,50", help="attached clusters per scenario")
    parser.add_argument("--rounds", type=int, default=5, help="PATCHes per scenario")
    parser.add_argument("--no-agent", action="store_true", help="skip the in-process agent")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = bench_env(database_url, "memory://", endpoint)  # no worker: nothing reads the broker
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_database(database_url)
    manage(env, "migrate", "--noinput")
    bootstrap = manage(env, "bootstrap", "--org", ORG_SLUG, "--email", OWNER_EMAIL)
    token = bootstrap.strip().rsplit("token: ", 1)[-1]

    processes = Processes()
    try:
        emulator = processes.start(
            "emulator",
            [sys.executable, "-m", "controlplane.sandbox", "serve", "--port", str(port)],
            env,
            OUT_DIR / "catalog-propagation-emulator.log",
        )
        wait_for(lambda: emulator_healthy(endpoint), "emulator", 60, emulator)
        os.environ.update(env)
        return Bench(endpoint, env, token, args.rounds).run(sizes, agent=not args.no_agent)
    finally:
        processes.stop_all()


class Bench:
    def __init__(self, endpoint: str, env: dict[str, str], token: str, rounds: int) -> None:
        import django

        django.setup()
        from django.test import Client
        from django.test.utils import setup_test_environment

        from controlplane.cloudaccounts.models import CloudAccount
        from controlplane.providers.aws.external_id import generate_external_id
        from controlplane.sandbox.control import SandboxControl
        from controlplane.sandbox.customers import create_customer_role, new_account_id
        from controlplane.tenancy.models import Organization

        setup_test_environment()  # the test client's host "testserver" is allowed
        self.rounds = rounds
        self.org = Organization.objects.get(slug=ORG_SLUG)
        self.clean()
        CloudAccount.objects.filter(organization=self.org).delete()
        self.api = Client(headers={"Authorization": f"Bearer {token}"})
        self.control = SandboxControl(endpoint)
        self.account = CloudAccount.objects.create(
            organization=self.org,
            name="propbench",
            aws_account_id=new_account_id(),
            external_id=generate_external_id(),
        )
        role = create_customer_role(
            endpoint,
            external_id=self.account.external_id,
            account_id=self.account.aws_account_id,
            vendor_principal=env["LAKEPLANE_VENDOR_PRINCIPAL"],
        )
        self.account.role_arn, self.account.status = role.role_arn, "verified"
        self.account.save()

    def clean(self) -> None:
        from controlplane.catalogs.models import Catalog, CatalogAttachment
        from controlplane.clusters.models import Cluster
        from controlplane.computeplanes.models import ComputePlane

        CatalogAttachment.objects.filter(organization=self.org).delete()
        Catalog.objects.filter(organization=self.org).delete()
        Cluster.objects.filter(organization=self.org).delete()
        ComputePlane.objects.filter(organization=self.org).delete()

    # --- one scenario -------------------------------------------------------------------------

    def setup(self, layout: str, n: int) -> tuple[Any, list[Any], list[Any]]:
        from controlplane.catalogs import services as catalogs
        from controlplane.catalogs.models import Catalog
        from controlplane.clusters.models import Cluster
        from controlplane.computeplanes.models import ComputePlane

        def plane(i: int) -> ComputePlane:
            return ComputePlane.objects.create(
                organization=self.org,
                cloud_account=self.account,
                name=f"{layout}{n}-plane-{i}",
                region="us-east-1",
                kubernetes_version="1.31",
                status="ready",
                resources={"buckets": {"warehouse": f"lp-wh-{layout}{n}-{i}", "logs": "lp-logs"}},
            )

        planes = [plane(i) for i in range(1 if layout == "a" else n)]
        clusters = []
        for i in range(n):
            engine, version = ENGINES[i % 2]
            clusters.append(
                Cluster.objects.create(
                    organization=self.org,
                    compute_plane=planes[0 if layout == "a" else i],
                    name=f"{layout}{n}-cl-{i}",
                    engine=engine,
                    version=version,
                    status="running",
                    coordinator_instance_type="m6i.xlarge",
                    worker_instance_type="r6i.2xlarge",
                    workers_desired=2,
                    workers_max=10,
                )
            )
        catalog = Catalog.objects.create(
            organization=self.org,
            name=f"pg_{layout}{n}",
            connector="postgresql",
            properties={
                "connection-url": "jdbc:postgresql://db.internal:5432/app",
                "connection-user": "presto",
            },
            secrets={"connection-password": SECRET_ARN},
        )
        for cluster in clusters:
            catalogs.set_cluster_catalogs(cluster, [catalog])
        catalogs.publish_planes(planes)
        return catalog, planes, clusters

    def patch(self, catalog: Any, planes: list[Any], round_no: int) -> dict[str, Any]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from controlplane.agentapi.models import DesiredState
        from controlplane.agentapi.services import current_desired_state

        plane_ids = [p.id for p in planes]

        def versions() -> dict[str, int]:
            return dict(
                DesiredState.objects.filter(pk__in=plane_ids).values_list(
                    "compute_plane", "version"
                )
            )

        url = f"/api/v1/orgs/{ORG_SLUG}/catalogs/{catalog.id}"
        before = versions()
        self.api.get(url)  # token bookkeeping (last_used_at) settles outside the count
        calls_before = len(self.control.calls())
        body = {
            "properties": {
                "connection-url": f"jdbc:postgresql://db-{round_no}.internal:5432/app",
                "connection-user": "presto",
            }
        }
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            response = self.api.patch(url, body, content_type="application/json")
        request_s = time.perf_counter() - started
        assert response.status_code == 200, response.content
        new_version = response.json()["version"]
        # Every affected plane's stored desired state carries the new version (the brief's check,
        # one read per plane).
        for plane in planes:
            state = current_desired_state(plane)
            found = {c.id: c.version for c in state.catalogs}
            assert found.get(catalog.id) == new_version, (plane.id, found, new_version)
        desired_s = time.perf_counter() - started
        aws_calls = len(self.control.calls()) - calls_before
        after = versions()
        publishes = Counter(after[p] - before.get(p, 0) for p in plane_ids)
        tables = Counter(_table(q["sql"]) for q in captured.captured_queries)
        return {
            "queries": len(captured),
            "request_ms": request_s * 1000,
            "desired_ms": desired_s * 1000,
            "aws_calls": aws_calls,
            "publishes_per_plane": dict(publishes),
            "version": new_version,
            "tables": dict(tables),
            "sql": [q["sql"][:300] for q in captured.captured_queries],
        }

    def scenario(self, layout: str, n: int, agent: bool) -> dict[str, Any]:
        catalog, planes, clusters = self.setup(layout, n)
        runner = AgentRunner(self, planes[0], clusters) if agent else None
        if runner is not None:
            runner.catch_up(catalog)
        rounds = [self.patch(catalog, planes, r) for r in range(1, self.rounds + 1)]
        result: dict[str, Any] = {
            "layout": layout,
            "clusters": n,
            "planes": len(planes),
            "queries": [r["queries"] for r in rounds],
            "request_ms_median": statistics.median(r["request_ms"] for r in rounds),
            "desired_ms_median": statistics.median(r["desired_ms"] for r in rounds),
            "desired_ms_max": max(r["desired_ms"] for r in rounds),
            "aws_calls": sum(r["aws_calls"] for r in rounds),
            "publishes_per_plane": [r["publishes_per_plane"] for r in rounds],
            "tables": rounds[-1]["tables"],
            "sql": rounds[-1]["sql"],
            "loadavg_1m": loadavg(),
        }
        if runner is not None:
            result["agent"] = runner.timed_change(catalog, self.rounds + 1)
        self.clean()
        return result

    # --- the whole run --------------------------------------------------------------------------

    def run(self, sizes: list[int], agent: bool) -> int:
        results = [
            self.scenario(layout, n, agent and layout == "a" and n == max(sizes))
            for layout in ("a", "b")
            for n in sizes
        ]
        return report(results, sizes, self.rounds)


class AgentRunner:
    """The real agent loop (``Agent.run_once``) against the agent API through the test client."""

    def __init__(self, bench: Bench, plane: Any, clusters: list[Any]) -> None:
        from django.test import Client

        from computeplane_agent.agent import Agent
        from computeplane_agent.render.cluster import resource_prefix
        from computeplane_agent.secrets import MemorySecretResolver
        from controlplane.agentapi import services as agentapi

        self.bench = bench
        self.trino_prefixes = tuple(
            f"{resource_prefix(c.id)}-" for c in clusters if c.engine == "trino"
        )
        registered = (
            Client()
            .post(
                "/api/agent/v1/register",
                {
                    "bootstrap_token": agentapi.issue_bootstrap_token(plane),
                    "agent_version": "propbench",
                    "kubernetes_version": "1.31",
                },
                content_type="application/json",
            )
            .json()
        )
        self.target = RollingTarget()
        self.client = InProcessClient(registered["credential"])
        self.agent = Agent(
            client=self.client,
            target=self.target,
            agent_id=registered["agent_id"],
            poll_seconds=0,
            resolver=MemorySecretResolver({SECRET_ARN: "propbench-not-a-real-password"}),
        )

    def _propagation(self, catalog: Any) -> list[dict[str, Any]]:
        response = self.bench.api.get(f"/api/v1/orgs/{ORG_SLUG}/catalogs/{catalog.id}")
        return list(response.json()["propagation"])

    def catch_up(self, catalog: Any) -> None:
        for _ in range(3):
            self.agent.run_once()
            self.target.finish_rollouts()
        assert {p["status"] for p in self._propagation(catalog)} == {"live"}

    def timed_change(self, catalog: Any, round_no: int) -> dict[str, Any]:
        trino = {cid: len(s) for cid, s in self.target.statements.items()}
        self.target.applied.clear()
        url = f"/api/v1/orgs/{ORG_SLUG}/catalogs/{catalog.id}"
        body = {
            "properties": {
                "connection-url": f"jdbc:postgresql://db-{round_no}.internal:5432/app",
                "connection-user": "presto",
            }
        }
        started = time.perf_counter()
        response = self.bench.api.patch(url, body, content_type="application/json")
        version = response.json()["version"]
        with self.client.counting() as first_pass:
            self.agent.run_once()  # Trino: statements; PrestoDB: rollout rendered, in progress
        after_first = self._propagation(catalog)
        self.target.finish_rollouts()
        with self.client.counting() as second_pass:
            self.agent.run_once()  # PrestoDB rollouts completed
        propagation = self._propagation(catalog)
        elapsed = time.perf_counter() - started
        assert all(p["status"] == "live" and p["version"] == version for p in propagation), (
            propagation
        )
        statements = {cid: s[trino.get(cid, 0) :] for cid, s in self.target.statements.items() if s}
        deployments = [r.name for r in self.target.applied if r.kind == "Deployment"]
        return {
            "clusters_live": len(propagation),
            "ms_patch_to_all_live": elapsed * 1000,
            "live_after_first_pass": Counter(
                p["status"] for p in after_first if p["version"] == version
            ).get("live", 0),
            "trino_clusters_with_statements": sum(1 for s in statements.values() if s),
            "trino_statements": sum(len(s) for s in statements.values()),
            "deployments_rewritten": len(deployments),
            "deployments_rewritten_trino": sum(
                1 for name in deployments if name.startswith(self.trino_prefixes)
            ),
            # Per agent API request: (method path, queries), in order.
            "agent_api_queries_first_pass": first_pass,
            "agent_api_queries_second_pass": second_pass,
        }


class RollingTarget(MemoryTarget):
    """The memory target, with a PrestoDB-style rollout: a Deployment whose pod template changed
    is not ready until ``finish_rollouts`` (Kubernetes finishing the rolling restart)."""

    def apply(self, objects: Sequence[KubeObject]) -> None:
        for obj in objects:
            ref = ObjectRef.of(obj)
            old = self.objects.get(ref)
            if (
                ref.kind == "Deployment"
                and old is not None
                and old["spec"]["template"] != obj["spec"]["template"]
            ):
                self.unready[ref] = max(int(obj["spec"].get("replicas", 1)) - 1, 0)
        super().apply(objects)

    def finish_rollouts(self) -> None:
        self.unready.clear()


class InProcessClient:
    """``computeplane_agent.client.ControlPlaneClient`` over Django's test client."""

    def __init__(self, credential: str) -> None:
        from django.test import Client

        self.client = Client(headers={"Authorization": f"Bearer {credential}"})
        self.counts: list[tuple[str, int]] | None = None

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[tuple[str, int]]]:
        """SQL queries per agent API request while inside (the test client resets Django's
        query log at each request's start, so a wrapper counts instead)."""
        self.counts = []
        try:
            yield self.counts
        finally:
            self.counts = None

    def _request(self, label: str, call: Any) -> Any:
        from django.db import connection

        executed = 0

        def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal executed
            executed += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = call()
        if self.counts is not None:
            self.counts.append((label, executed))
        return response

    def register(self, registration: Any) -> Any:
        raise NotImplementedError

    def desired_state(self, known_version: int | None, wait_seconds: int) -> Any:
        from computeplane_agent.contract import DesiredState

        headers = {} if known_version is None else {"If-None-Match": f'"{known_version}"'}
        response = self._request(
            "GET desired-state",
            lambda: self.client.get(
                "/api/agent/v1/desired-state", {"wait": wait_seconds}, headers=headers
            ),
        )
        if response.status_code == 304:
            return None
        assert response.status_code == 200, response.content
        return DesiredState.model_validate_json(response.content)

    def _post(self, path: str, body: Any) -> None:
        response = self._request(
            f"POST {path}",
            lambda: self.client.post(
                f"/api/agent/v1/{path}", body.model_dump_json(), content_type="application/json"
            ),
        )
        assert response.status_code < 300, response.content
        if response.status_code == 202:
            # Write-behind ingestion (the PostgreSQL default) buffered the report: write it now,
            # as the flusher would within one interval, before anyone reads what it changed.
            # Its queries are counted as a request of their own.
            from controlplane.agentapi import ingest

            flushed = self._request(f"flush {path}", ingest.buffer.flush)
            assert flushed.failed == 0, flushed

    def status(self, report: Any) -> None:
        self._post("status", report)

    def heartbeat(self, heartbeat: Any) -> None:
        self._post("heartbeat", heartbeat)

    def usage(self, report: Any) -> None:
        self._post("usage", report)


def _table(sql: str) -> str:
    """The statement's verb and first table, to show where a request's queries go."""
    words = sql.replace('"', " ").split()
    verb = words[0].upper() if words else "?"
    if verb in {"SAVEPOINT", "RELEASE", "BEGIN", "COMMIT", "ROLLBACK"}:
        return verb
    for key in ("FROM", "INTO", "UPDATE"):
        if key in (w.upper() for w in words[1:]) or verb == key:
            idx = 0 if verb == key else [w.upper() for w in words].index(key)
            return f"{verb} {words[idx + 1]}"
    return verb


def _requests(counts: list[tuple[str, int]]) -> str:
    return ", ".join(f"{label} {n}" for label, n in counts)


def report(results: list[dict[str, Any]], sizes: list[int], rounds: int) -> int:
    print(f"\none catalog PATCH, {rounds} rounds per row (queries per round; ms: median)")
    header = (
        f"{'layout':<22} {'N':>3} {'planes':>6} {'queries':>8} {'q/cluster':>9} "
        f"{'PATCH ms':>9} {'all desired ms':>14} {'publish/plane':>13} {'AWS calls':>9}"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for r in results:
        queries = r["queries"]
        steady = max(set(queries), key=queries.count)
        layout = "a: N on one plane" if r["layout"] == "a" else "b: one per plane"
        publishes = {k for p in r["publishes_per_plane"] for k in p}
        print(
            f"{layout:<22} {r['clusters']:>3} {r['planes']:>6} {steady:>8} "
            f"{steady / r['clusters']:>9.2f} {r['request_ms_median']:>9.1f} "
            f"{r['desired_ms_median']:>14.1f} {'/'.join(map(str, sorted(publishes))):>13} "
            f"{r['aws_calls']:>9}"
        )
        if len(set(queries)) > 1:
            print(f"    (queries differ between rounds: {queries})")
        ok &= r["aws_calls"] == 0 and publishes == {1}
    lo, hi = min(sizes), max(sizes)
    print()
    for layout in ("a", "b"):
        by_n = {r["clusters"]: r for r in results if r["layout"] == layout}
        q_lo, q_hi = by_n[lo]["queries"][-1], by_n[hi]["queries"][-1]
        line = f"layout {layout}: queries(N={hi}) / queries(N={lo}) = {q_hi / q_lo:.2f}"
        if layout == "a":
            met = q_hi == q_lo
            line += f"  (goal: constant total) {'met' if met else 'NOT met'}"
        else:
            per_plane = (q_hi - q_lo) / (hi - lo)
            # Constant per plane: the marginal cost of each plane is the same between sizes.
            mid = [s for s in sizes if lo < s < hi]
            if mid:
                q_mid = by_n[mid[0]]["queries"][-1]
                met = (q_mid - q_lo) * (hi - lo) == (q_hi - q_lo) * (mid[0] - lo)
            else:
                met = True
            line += (
                f"; {per_plane:.2f} queries per extra plane"
                f"  (goal: a constant per plane) {'met' if met else 'NOT met'}"
            )
        ok &= met
        print(line)
    for r in results:
        if "agent" in r:
            a = r["agent"]
            print(
                f"\nin-process agent, layout a, N={r['clusters']} (memory target, rollouts "
                f"completed on cue): PATCH start -> all {a['clusters_live']} clusters live "
                f"{a['ms_patch_to_all_live']:.0f} ms\n"
                f"  first pass: {a['live_after_first_pass']} live (Trino, "
                f"{a['trino_statements']} statements on {a['trino_clusters_with_statements']} "
                f"coordinators); {a['deployments_rewritten']} Deployments rewritten "
                f"({a['deployments_rewritten_trino']} of them Trino)\n"
                f"  agent API queries per request: first pass "
                f"{_requests(a['agent_api_queries_first_pass'])}; second pass "
                f"{_requests(a['agent_api_queries_second_pass'])}"
            )
    out = OUT_DIR / f"catalog-propagation-{date.today().isoformat()}.json"
    out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2, default=str))
    print(f"\nload average (1 min) at the end: {loadavg():.2f}; written {out.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
