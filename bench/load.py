"""Agents flood: how many agents one gunicorn holds before heartbeat p99 crosses 1 s.

Run from the repository root::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/load.py

``bench/agent_ingest.py`` measures requests per second at a fixed agent count; this one grows
the fleet. For each count in ``--agents`` (default 100,300,1000) it registers that many agents
(one compute plane each, real hashed credentials, ``agent_ingest.register_agents``) and runs wrk
with one connection per agent, each sending as fast as it is answered (a closed loop: far
harder than agents that report every 30 s), capped by ``--max-connections``, for ``--duration`` s,
half heartbeats and half status reports (two wrk runs at once), against gunicorn as
``make run`` serves it (gthread, 8 threads). Per count: requests per second, p50/p99 of each
kind, errors (non-2xx and socket errors) and their rate. Before the runs it counts the SQL
queries one heartbeat and one status report take (Django's test client, in process).

It fails (exit 1) when the error rate of any run is above ``--max-error-rate`` (default 0.1 %),
and prints the first agent count whose heartbeat p99 passes 1 s (or that none did).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_ingest  # a sibling script, not a package
import api_throughput as common

REPO = common.REPO
OUT_DIR = common.OUT_DIR
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_load_bench"
P99_LIMIT_MS = 1000.0
GOAL_HEARTBEAT_P99_MS = 250.0


def sql_per_request(agent: tuple[str, str]) -> dict[str, int]:
    """Queries one heartbeat and one status report run, in this process (no write-behind)."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    agent_id, credential = agent
    now = datetime.now(UTC).isoformat()
    bodies = {
        "heartbeat": {"agent_id": agent_id, "agent_version": "0.1.0", "sent_at": now},
        "status": {"agent_id": agent_id, "report_id": f"sql-{uuid.uuid4().hex}", "sent_at": now},
    }
    counts = {}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {credential}")
    with override_settings(LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS=0, ALLOWED_HOSTS=["*"]):
        for kind, body in bodies.items():
            with CaptureQueriesContext(connection) as queries:
                answer = client.post(f"/api/agent/v1/{kind}", body, content_type="application/json")
            assert answer.status_code in (200, 202), (kind, answer.status_code, answer.content)
            counts[kind] = len(queries)
    return counts


def flood(
    wrk: str, base: str, scripts: dict[str, Path], connections: int, args: argparse.Namespace
) -> dict[str, common.WrkResult]:
    """Heartbeats and status reports at once, each on half the connections."""
    half = max(1, connections // 2)
    running = {
        kind: subprocess.Popen(
            [
                *(wrk, "-t", str(args.threads), "-c", str(max(half, args.threads))),
                *("-d", f"{args.duration}s", "--latency", "--timeout", "10s", "-s", str(path)),
                f"{base}/",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind, path in scripts.items()
    }
    results = {}
    for kind, process in running.items():
        out, _ = process.communicate(timeout=args.duration + 60)
        results[kind] = common.parse_wrk(out, kind, 1, 0.0, common.loadavg())
    return results


def errors_of(result: common.WrkResult) -> int:
    """Non-2xx answers plus wrk's socket errors ("connect 0, read 0, write 0, timeout 3")."""
    sockets = [part.split()[-1] for part in result.socket_errors.split(",") if part.strip()]
    return result.non_2xx + sum(int(n) for n in sockets)


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", default="100,300,1000", help="agent counts, comma-separated")
    parser.add_argument("--duration", type=int, default=15, help="seconds per count")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads per kind")
    # gunicorn's backlog (bench/api_throughput.py) is 256: more open connections than that are
    # refused while every thread is busy, which measures the backlog, not Lakeplane.
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2 * common.CORES + 1)
    parser.add_argument("--gunicorn-threads", type=int, default=8)
    parser.add_argument("--max-error-rate", type=float, default=0.001)
    args = parser.parse_args()
    counts = [int(n) for n in args.agents.split(",")]

    wrk = common.require_wrk()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = common.bench_env(database_url)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    common.ensure_database(database_url)
    common.manage(env, "migrate", "--noinput")
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.db import connection

    agents = agent_ingest.register_agents(max(counts))
    queries = sql_per_request(agents[0])
    connection.close()
    print(f"SQL queries per request: heartbeat {queries['heartbeat']}, status {queries['status']}")

    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    process = common.start_gunicorn(env, port, args.workers, "gthread", args.gunicorn_threads)
    rows: list[dict[str, Any]] = []
    failed = False
    try:
        common.wait_healthy(base, process)
        for count in counts:
            fleet = agents[:count]
            scripts = {kind: OUT_DIR / f"load_{kind}.lua" for kind in ("heartbeat", "status")}
            connections = min(count, args.max_connections)
            for kind, path in scripts.items():
                agent_ingest.write_script(path, fleet, kind, args.threads)
            try:
                results = flood(wrk, base, scripts, connections, args)
            finally:
                for path in scripts.values():
                    path.unlink(missing_ok=True)  # it holds live credentials
            total = sum(r.requests for r in results.values())
            errors = sum(errors_of(r) for r in results.values())
            rate = errors / total if total else 1.0
            row = {
                "agents": count,
                "connections": connections,
                "requests_per_s": sum(r.requests_per_s for r in results.values()),
                "heartbeat_p50_ms": results["heartbeat"].p50_ms,
                "heartbeat_p99_ms": results["heartbeat"].p99_ms,
                "status_p99_ms": results["status"].p99_ms,
                "errors": errors,
                "error_rate": rate,
                "loadavg_1m": common.loadavg(),
            }
            rows.append(row)
            failed |= rate > args.max_error_rate
            print(
                f"  {count} agents ({connections} connections): {row['requests_per_s']:.0f} req/s, "
                f"heartbeat p50 {row['heartbeat_p50_ms']:.1f} ms p99 "
                f"{row['heartbeat_p99_ms']:.1f} ms, status p99 {row['status_p99_ms']:.1f} ms, "
                f"errors {errors} ({100 * rate:.2f} %), load {row['loadavg_1m']:.2f}"
            )
    finally:
        common.stop_gunicorn(process)

    crossing = next((r["agents"] for r in rows if r["heartbeat_p99_ms"] > P99_LIMIT_MS), None)
    held = [r["agents"] for r in rows if r["heartbeat_p99_ms"] <= GOAL_HEARTBEAT_P99_MS]
    print(
        f"heartbeat p99 crosses 1 s at: {crossing} agents"
        if crossing
        else f"heartbeat p99 stayed under 1 s up to {counts[-1]} agents"
    )
    print(
        f"goal heartbeat p99 <= {GOAL_HEARTBEAT_P99_MS:.0f} ms with 0 errors: "
        f"{'met up to ' + str(max(held)) + ' agents' if held else 'NOT met'}"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "date": stamp,
        "machine": common.machine(),
        "command": " ".join([".venv/bin/python", "bench/load.py", *sys.argv[1:]]),
        "settings": vars(args),
        "sql_per_request": queries,
        "rows": rows,
        "p99_crosses_1s_at": crossing,
    }
    (OUT_DIR / f"load-{stamp}.json").write_text(json.dumps(report, indent=2))
    print(
        f"goal error rate <= {100 * args.max_error_rate:.2f} % in every run: "
        f"{'NOT met' if failed else 'met'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
