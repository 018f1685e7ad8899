"""API throughput: a plain JSON probe against an authenticated list of 50 operations.

Run from the repository root::

    .venv/bin/python bench/api_throughput.py            # defaults: 16 connections, 15 s each

What it does, in one run:

1. prepares a dedicated PostgreSQL database (``DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/lakeplane_bench``; created if missing), migrates it,
   bootstraps an org with an owner and an API token (``manage.py bootstrap``) and seeds
   operations with steps, so ``?limit=50`` returns a full page;
2. counts the SQL queries of one list request in-process (Django test client +
   ``CaptureQueriesContext``);
3. starts gunicorn on a free 127.0.0.1 port with the sandbox settings and ``DJANGO_DEBUG`` off
   (the sandbox settings differ from production only in the secret key's source and the
   HTTPS redirects/HSTS, which a plain-HTTP loopback benchmark cannot use anyway);
4. runs ``wrk --latency`` against ``/healthz`` and the authenticated list, alternating them
   for ``--rounds`` rounds after a warm-up, so the ratio compares like with like;
5. stops gunicorn (SIGTERM, graceful), prints a table, writes ``bench/out/*.json``.

Traffic goes to 127.0.0.1 only, and every wrk run is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "bench" / "out"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_bench"
ORG_SLUG = "bench"
OWNER_EMAIL = "bench-owner@example.com"
LIST_LIMIT = 50

# The goals: the list of 50 at >= 0.25x the plain endpoint, p99 <= 100 ms.
GOAL_RATIO = 0.25
GOAL_P99_MS = 100.0

CORES = os.cpu_count() or 1


@dataclass
class WrkResult:
    endpoint: str
    round: int
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: str
    # CPU seconds the gunicorn workers spent per request: unlike req/s, this does not move
    # when other processes compete for the two cores.
    worker_cpu_ms_per_request: float
    loadavg_1m: float


# ---- environment ------------------------------------------------------------------------------
def bench_env(database_url: str) -> dict[str, str]:
    """The environment shared by manage.py, this process's Django and gunicorn."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
            "DJANGO_DEBUG": "0",
            # Keep the sandbox's generated secret key and broker folders out of the dev .data.
            "LAKEPLANE_DATA_DIR": str(OUT_DIR / "data"),
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "wrk is not installed. Install it with:\n"
            "    sudo apt-get update && sudo apt-get install -y wrk      # Debian/Ubuntu\n"
            "    brew install wrk                                         # macOS\n"
            "then run this script again."
        )
    return wrk


def ensure_database(database_url: str) -> None:
    """Create the benchmark database if it does not exist (connecting to 'postgres')."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql"}:
        sys.exit(f"DATABASE_URL must be PostgreSQL for this benchmark, got {parts.scheme!r}.")
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# ---- data --------------------------------------------------------------------------------------
STEP_NAMES = ["plan", "ensure_vpc", "ensure_subnets", "ensure_eks", "ensure_nodegroup"]


def seed_operations(org_slug: str, total: int, steps_per_operation: int) -> int:
    """Top the org up to ``total`` operations, each with ``steps_per_operation`` steps.

    Finished, failed and running operations are mixed so the serializer renders timestamps,
    errors and step details as a real page would.
    """
    from django.db import transaction

    from controlplane.core.models import Operation, OperationStatus, OperationStep, StepStatus
    from controlplane.tenancy.models import Organization

    org = Organization.objects.get(slug=org_slug)
    missing = total - Operation.objects.filter(organization=org).count()
    now = datetime.now(UTC)
    with transaction.atomic():
        for i in range(max(missing, 0)):
            kind = i % 3
            status = [OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.RUNNING][
                kind
            ]
            started = now - timedelta(minutes=10 + i)
            op = Operation.objects.create(
                organization=org,
                kind="computeplane.create",
                target_type="compute_plane",
                target_id=f"cp_bench{i:04d}",
                status=status,
                progress=[100, 60, 40][kind],
                params={"region": "us-east-1", "availability_zones": 3},
                resources={"vpc_id": f"vpc-{i:08x}"},
                error_code="aws-access-denied" if status == OperationStatus.FAILED else "",
                error_message="The role cannot ec2:CreateNatGateway."
                if status == OperationStatus.FAILED
                else "",
                attempts=1,
                started_at=started,
                finished_at=started + timedelta(minutes=8) if kind != 2 else None,
            )
            OperationStep.objects.bulk_create(
                OperationStep(
                    operation=op,
                    position=pos,
                    name=STEP_NAMES[pos % len(STEP_NAMES)] + ("" if pos < 5 else f"_{pos}"),
                    status=StepStatus.SUCCEEDED if pos < 2 or kind == 0 else StepStatus.PENDING,
                    attempts=1,
                    detail=f"step {pos} of {op.target_id}",
                    started_at=started + timedelta(seconds=30 * pos),
                    finished_at=started + timedelta(seconds=30 * pos + 25),
                )
                for pos in range(steps_per_operation)
            )
    return Operation.objects.filter(organization=org).count()


def count_list_queries(path: str, token: str) -> dict[str, Any]:
    """SQL queries of one list request, warm (the token's last_used_at is already fresh)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(headers={"Authorization": f"Bearer {token}"}, HTTP_HOST="127.0.0.1")
    first = client.get(path)
    if first.status_code != 200:
        sys.exit(f"GET {path} answered {first.status_code}: {first.content[:500]!r}")
    rows = len(first.json()["results"])
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return {"queries": len(captured), "rows": rows, "sql": [q["sql"] for q in captured]}


# ---- gunicorn ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(
    env: dict[str, str], port: int, workers: int, worker_class: str, threads: int
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "controlplane.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        # The backlog must hold every wrk connection while all workers are busy.
        "--backlog",
        "256",
    ]
    print("gunicorn:", " ".join(command[2:]))
    return subprocess.Popen(command, cwd=REPO, env=env)


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    # Generous: with other test suites on the two cores, 5 workers importing Django took
    # more than 30 s to answer (2026-11-21).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode} before answering /healthz")
        try:
            # base is our own http://127.0.0.1 URL, never user input.
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    sys.exit(f"gunicorn did not answer {base}/healthz within {timeout} s")


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # graceful: workers finish their request and exit
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_cpu_seconds(master_pid: int) -> float:
    """User+system CPU of gunicorn's workers (the master's children), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended while we looked
        # After the command name: state, ppid, ..., utime (field 14), stime (field 15).
        if int(fields[1]) == master_pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


# ---- wrk ---------------------------------------------------------------------------------------
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(
    output: str, endpoint: str, round_no: int, cpu_seconds: float, load: float
) -> WrkResult:
    def grab(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return match

    done = grab(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.+)$", output, re.MULTILINE)
    return WrkResult(
        endpoint=endpoint,
        round=round_no,
        requests=int(done.group(1)),
        duration_s=_ms(done.group(2) + done.group(3)) / 1000,
        requests_per_s=float(grab(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(grab(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(grab(r"^\s+99%\s+(\S+)").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors.group(1).strip() if socket_errors else "",
        worker_cpu_ms_per_request=1000 * cpu_seconds / max(int(done.group(1)), 1),
        loadavg_1m=load,
    )


def run_wrk(
    wrk: str, url: str, headers: list[str], connections: int, threads: int, duration: int
) -> str:
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=duration + 60
    )
    return done.stdout


# ---- report ------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": CORES,
        "cpu": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def aggregate(results: list[WrkResult], endpoint: str) -> dict[str, float]:
    """All rounds of one endpoint: total requests over total time; the worst p50/p99."""
    mine = [r for r in results if r.endpoint == endpoint]
    return {
        "requests_per_s": sum(r.requests for r in mine) / sum(r.duration_s for r in mine),
        "p50_ms": max(r.p50_ms for r in mine),
        "p99_ms": max(r.p99_ms for r in mine),
        "non_2xx": sum(r.non_2xx for r in mine),
        "worker_cpu_ms_per_request": sum(r.worker_cpu_ms_per_request * r.requests for r in mine)
        / sum(r.requests for r in mine),
    }


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress when piped
    # Sync workers, 2 x cores + 1 (gunicorn's rule): the list is CPU-bound Python with short
    # database round trips, so threads inside one worker would mostly wait on the GIL, and a
    # spare process per core covers the moments a worker waits on PostgreSQL. wrk and
    # PostgreSQL share the same cores, which is what a small production box looks like too.
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2 * CORES + 1, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument("--operations", type=int, default=80, help="operations to seed (>= 60)")
    parser.add_argument("--steps", type=int, default=5, help="steps per seeded operation")
    args = parser.parse_args()

    wrk = require_wrk()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = bench_env(database_url)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    ensure_database(database_url)
    manage(env, "migrate", "--noinput")
    bootstrap = manage(env, "bootstrap", "--org", ORG_SLUG, "--email", OWNER_EMAIL)
    token = bootstrap.strip().rsplit("token: ", 1)[-1]

    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    operations = seed_operations(ORG_SLUG, max(args.operations, 60), args.steps)
    list_path = f"/api/v1/orgs/{ORG_SLUG}/operations?limit={LIST_LIMIT}"
    queries = count_list_queries(list_path, token)
    if queries["rows"] != LIST_LIMIT:
        sys.exit(f"the list returned {queries['rows']} rows, expected a full page of {LIST_LIMIT}")
    from django.db import connection

    connection.close()  # the benchmark's own connection must not sit idle in a transaction

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    endpoints = {
        "/healthz": (f"{base}/healthz", []),
        f"{list_path} (Bearer)": (f"{base}{list_path}", [f"Authorization: Bearer {token}"]),
    }
    results: list[WrkResult] = []
    process = start_gunicorn(env, port, args.workers, args.worker_class, args.gunicorn_threads)
    try:
        wait_healthy(base, process)
        for _name, (url, headers) in endpoints.items():
            run_wrk(wrk, url, headers, args.connections, args.threads, args.warmup)
        for round_no in range(1, args.rounds + 1):
            for name, (url, headers) in endpoints.items():
                cpu_before = worker_cpu_seconds(process.pid)
                out = run_wrk(wrk, url, headers, args.connections, args.threads, args.duration)
                cpu = worker_cpu_seconds(process.pid) - cpu_before
                result = parse_wrk(out, name, round_no, cpu, loadavg())
                results.append(result)
                print(
                    f"  round {round_no} {name}: {result.requests_per_s:.0f} req/s, "
                    f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                    f"worker CPU {result.worker_cpu_ms_per_request:.2f} ms/request, "
                    f"load {result.loadavg_1m:.2f}"
                )
    finally:
        stop_gunicorn(process)

    plain = aggregate(results, "/healthz")
    listed = aggregate(results, f"{list_path} (Bearer)")
    ratio = listed["requests_per_s"] / plain["requests_per_s"]
    cpu_ratio = plain["worker_cpu_ms_per_request"] / listed["worker_cpu_ms_per_request"]
    goals = {
        f"ratio >= {GOAL_RATIO}": ratio >= GOAL_RATIO,
        f"list p99 <= {GOAL_P99_MS:.0f} ms": listed["p99_ms"] <= GOAL_P99_MS,
        "no non-2xx answers": plain["non_2xx"] == 0 and listed["non_2xx"] == 0,
    }

    print()
    print(f"{'endpoint':<52} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for name, agg in (("/healthz", plain), (f"{list_path} (Bearer)", listed)):
        print(
            f"{name:<52} {agg['requests_per_s']:>8.0f} {agg['p50_ms']:>8.1f} "
            f"{agg['p99_ms']:>8.1f} {agg['worker_cpu_ms_per_request']:>11.2f}"
        )
    print(f"ratio list/plain (req/s): {ratio:.3f}")
    print(f"ratio list/plain (worker CPU per request, inverted): {cpu_ratio:.3f}")
    print(f"load average (1 min) at the end: {loadavg():.2f} (other processes share the cores)")
    print(f"SQL queries per list request: {queries['queries']} ({queries['rows']} rows)")
    for goal, met in goals.items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "date": stamp,
        "machine": machine(),
        "command": " ".join([".venv/bin/python", "bench/api_throughput.py", *sys.argv[1:]]),
        "settings": {
            "django": "controlplane.settings.sandbox, DJANGO_DEBUG=0",
            "gunicorn": {
                "workers": args.workers,
                "worker_class": args.worker_class,
                "threads": args.gunicorn_threads,
            },
            "wrk": {
                "connections": args.connections,
                "threads": args.threads,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
            },
        },
        "seeded_operations": operations,
        "steps_per_operation": args.steps,
        "runs": [asdict(r) for r in results],
        "plain": plain,
        "list": listed,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "list_queries": queries,
        "goals": goals,
    }
    target = OUT_DIR / f"api_throughput-{stamp}.json"
    target.write_text(json.dumps(report, indent=2))
    print(f"wrote {target.relative_to(REPO)}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
