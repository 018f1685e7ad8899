"""Compute planes: worker CPU and AWS calls per compute plane, and 50 created at once.

Run from the repository root::

    .venv/bin/python bench/computeplanes.py            # defaults: 2 workers, 50 planes

What it does, in one run:

1. prepares a dedicated PostgreSQL database (``DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/lakeplane_cpbench``; created if missing), migrates it
   and bootstraps an org; empties its own Redis database (``CELERY_BROKER_URL``, default
   ``redis://127.0.0.1:6379/11``: only that database is flushed);
2. starts the sandbox emulator as its own process (``python -m controlplane.sandbox serve``)
   on a free port, creates the customer role in ``--accounts`` fresh customer accounts and
   marks a cloud account per customer account verified;
3. starts ``--workers`` Celery workers (``-Q provisioning,default,billing --concurrency 1``,
   INFO log to ``bench/out/``), pointed at the emulator;
4. (a) one compute plane: create → ``ready``, delete → ``deleted``; (b) ``--planes`` compute
   planes created at once through ``services.create_compute_plane`` (what the API view calls),
   timed until every one is ``ready``, then all deleted. For each phase: the workers' CPU
   seconds (utime+stime of each worker and its pool children, from /proc), the AWS calls the
   emulator logged for the customer accounts, and every task's wall time from the workers'
   ``succeeded in Xs`` lines;
5. checks that no resource tagged ``lakeplane:managed-by=lakeplane`` is left in any account;
6. stops every process it started (also on failure or Ctrl-C), prints a table and writes
   ``bench/out/computeplanes-*.json``.

``--eks-hold S`` holds each new EKS cluster in ``CREATING`` for S seconds (the emulator's
hold, flipped to ACTIVE by this script through the emulator's control API, which makes no AWS
call), so the run also shows the workflow waiting for EKS without holding a worker: the step
is re-scheduled every 30 s (the EKS reconciler's poll) and the workers serve other planes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "bench" / "out"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_cpbench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/11"
ORG_SLUG = "cpbench"
OWNER_EMAIL = "cpbench-owner@example.com"
QUEUES = "provisioning,default,billing"

# The goals.
GOAL_CPU_S_PER_PLANE = 2.0
GOAL_MAX_TASK_S = 2.0

CORES = os.cpu_count() or 1
TICKS = os.sysconf("SC_CLK_TCK")
SUCCEEDED = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] succeeded in ([0-9.e-]+)s")


# ---- environment ------------------------------------------------------------------------------
def bench_env(database_url: str, broker_url: str, endpoint_url: str) -> dict[str, str]:
    """The environment shared by manage.py, this process's Django and the workers."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
            "DJANGO_DEBUG": "0",
            "AWS_ENDPOINT_URL": endpoint_url,
            "LAKEPLANE_VENDOR_PRINCIPAL": "arn:aws:iam::123456789012:root",
            # Keep the sandbox's generated secret key out of the dev .data.
            "LAKEPLANE_DATA_DIR": str(OUT_DIR / "data"),
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def ensure_database(database_url: str) -> None:
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


def flush_broker(broker_url: str) -> None:
    """Messages left by an interrupted run would be worked on and counted: drop them."""
    import redis

    if not broker_url.startswith("redis://"):
        sys.exit("CELERY_BROKER_URL must be a redis:// URL (this script empties its database).")
    redis.Redis.from_url(broker_url).flushdb()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- processes ---------------------------------------------------------------------------------
class Processes:
    """Every process this script starts, stopped in reverse order whatever happens."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> Any:
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # Celery: warm shutdown
        for name, process in reversed(self.started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 30 s; killing it")
                process.kill()
                process.wait()


def wait_for(predicate: Any, what: str, timeout: float, process: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not within {timeout} s")


def web_healthy(base: str) -> bool:
    try:
        # base is our own http://127.0.0.1 URL, never user input.
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def emulator_healthy(endpoint: str) -> bool:
    try:
        # endpoint is our own http://127.0.0.1 URL, never user input.
        with urllib.request.urlopen(f"{endpoint}/_lakeplane/health", timeout=2) as r:  # noqa: S310
            return bool(r.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def proc_cpu(pid: int) -> tuple[int, float, float]:
    """(ppid, own utime+stime, reaped children's cutime+cstime) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state(0), ppid(1), ... utime(11), stime(12), cutime(13), cstime(14).
    return (
        int(fields[1]),
        (int(fields[11]) + int(fields[12])) / TICKS,
        (int(fields[13]) + int(fields[14])) / TICKS,
    )


def workers_cpu(masters: list[int]) -> float:
    """CPU seconds of the worker masters, their live pool children and any reaped ones.

    A pool child that exits (max-tasks-per-child, a crash) lands in its master's cutime, so
    master own + master cutime + live children own covers every process without counting
    one twice.
    """
    total = 0.0
    for pid in masters:
        _, own, reaped = proc_cpu(pid)
        total += own + reaped
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid, own, _ = proc_cpu(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
        if ppid in masters:
            total += own
    return total


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


# ---- task log ----------------------------------------------------------------------------------
class TaskLog:
    """Task wall times from the workers' ``succeeded in Xs`` lines, read phase by phase."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets = dict.fromkeys(paths, 0)

    def read_new(self) -> list[float]:
        durations: list[float] = []
        for path in self.paths:
            with path.open("rb") as f:
                f.seek(self.offsets[path])
                data = f.read()
            # Only whole lines: a line still being written is read next time.
            cut = data.rfind(b"\n") + 1
            self.offsets[path] += cut
            for line in data[:cut].decode(errors="replace").splitlines():
                match = SUCCEEDED.search(line)
                if match:
                    durations.append(float(match.group(3)))
        return durations

    def problems(self) -> list[str]:
        """Errors, warnings and tracebacks anywhere in the worker logs."""
        lines = []
        for path in self.paths:
            for line in path.read_text(errors="replace").splitlines():
                if re.search(r"\b(ERROR|CRITICAL|Traceback)\b|WARNING/.*lease", line):
                    lines.append(f"{path.name}: {line}")
        return lines


def distribution(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "count": len(ordered),
        "p50_s": pct(50),
        "p90_s": pct(90),
        "p99_s": pct(99),
        "max_s": ordered[-1],
        "mean_s": statistics.fmean(ordered),
        "total_s": sum(ordered),
        "durations": [round(v, 4) for v in values],
    }


# ---- the emulator ------------------------------------------------------------------------------
def tagged_resources(endpoint: str, account_id: str) -> dict[str, list[str]]:
    """Every Lakeplane-tagged resource left in a customer account, by kind."""
    from controlplane.sandbox.customers import admin_client

    managed = [{"Name": "tag:lakeplane:managed-by", "Values": ["lakeplane"]}]
    ec2 = admin_client(endpoint, "ec2", account_id)
    found = {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=managed)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=managed)["Subnets"]],
        "igws": [
            i["InternetGatewayId"]
            for i in ec2.describe_internet_gateways(Filters=managed)["InternetGateways"]
        ],
        # The emulator ignores tag filters on NAT gateways: read their tags here.
        "nats": [
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways()["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
            and any(
                t["Key"] == "lakeplane:managed-by" and t["Value"] == "lakeplane"
                for t in n.get("Tags") or []
            )
        ],
        "eips": [a["AllocationId"] for a in ec2.describe_addresses(Filters=managed)["Addresses"]],
        "route_tables": [
            r["RouteTableId"] for r in ec2.describe_route_tables(Filters=managed)["RouteTables"]
        ],
        "security_groups": [
            g["GroupId"] for g in ec2.describe_security_groups(Filters=managed)["SecurityGroups"]
        ],
    }
    iam = admin_client(endpoint, "iam", account_id)
    found["iam_roles"] = [r["RoleName"] for r in iam.list_roles(PathPrefix="/lakeplane/")["Roles"]]
    found["instance_profiles"] = [
        p["InstanceProfileName"]
        for p in iam.list_instance_profiles(PathPrefix="/lakeplane/")["InstanceProfiles"]
    ]
    found["eks_clusters"] = list(
        admin_client(endpoint, "eks", account_id).list_clusters()["clusters"]
    )
    found["buckets"] = [
        b["Name"]
        for b in admin_client(endpoint, "s3", account_id).list_buckets()["Buckets"]
        if b["Name"].startswith("lakeplane-")
    ]
    return found


class CallCounter:
    """AWS calls the emulator logged for the customer accounts since the last ``take``."""

    def __init__(self, control: Any, accounts: list[str]) -> None:
        self.control = control
        self.accounts = accounts
        self.since = {a: self._last(a) for a in accounts}

    def _last(self, account: str) -> int:
        calls = self.control.calls(account=account)
        return calls[-1].seq if calls else 0

    def take(self) -> dict[str, Any]:
        total = mutating = failed = 0
        by_action: dict[str, int] = {}
        for account in self.accounts:
            calls = self.control.calls(account=account, since=self.since[account])
            if calls:
                self.since[account] = calls[-1].seq
            for call in calls:
                total += 1
                mutating += call.mutating
                failed += call.outcome != "ok"
                key = f"{call.service}:{call.action}"
                by_action[key] = by_action.get(key, 0) + 1
        return {
            "calls": total,
            "mutating": mutating,
            "not_ok": failed,
            "by_action": dict(sorted(by_action.items())),
        }


class EksFlipper(threading.Thread):
    """Flips each held EKS cluster to ACTIVE ``hold`` seconds after its name is recorded.

    Names come from the compute planes' rows, and the flip goes through the emulator's
    control API, so the flipper adds no AWS call to the counts.
    """

    def __init__(self, control: Any, hold: float) -> None:
        super().__init__(daemon=True)
        self.control = control
        self.hold = hold
        self.seen: dict[tuple[str, str], float] = {}
        self.flipped: set[tuple[str, str]] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from controlplane.computeplanes.models import ComputePlane

        try:
            while not self.stop.wait(0.5):
                rows = ComputePlane.objects.filter(
                    deleted_at__isnull=True, resources__has_key="eks_cluster_name"
                ).values_list("cloud_account__aws_account_id", "resources")
                now = time.monotonic()
                for account, resources in rows:
                    key = (account, resources["eks_cluster_name"])
                    self.seen.setdefault(key, now)
                    if key not in self.flipped and now - self.seen[key] >= self.hold:
                        self.control.set_eks_cluster_status(key[0], key[1], "ACTIVE")
                        self.flipped.add(key)
        finally:
            connection.close()


# ---- the workload ------------------------------------------------------------------------------
def wait_statuses(
    plane_ids: list[str], wanted: str, timeout: float
) -> tuple[float, dict[str, str]]:
    """Seconds until every plane has ``wanted`` (or one fails), and the final statuses."""
    from controlplane.computeplanes.models import ComputePlane

    start = time.monotonic()
    while True:
        statuses = dict(ComputePlane.objects.filter(pk__in=plane_ids).values_list("pk", "status"))
        if all(s == wanted for s in statuses.values()):
            return time.monotonic() - start, statuses
        if any(s == "failed" for s in statuses.values()):
            return time.monotonic() - start, statuses
        if time.monotonic() - start > timeout:
            return time.monotonic() - start, statuses
        time.sleep(0.2)


def failures(plane_ids: list[str]) -> list[str]:
    from controlplane.computeplanes.models import ComputePlane
    from controlplane.core.models import Operation

    out = []
    for plane in ComputePlane.objects.filter(pk__in=plane_ids).exclude(
        status__in=["ready", "deleted"]
    ):
        op = Operation.objects.filter(pk=plane.operation_id).first()
        detail = f"{op.status} {op.error_code}: {op.error_message}" if op else "no operation"
        out.append(f"{plane.pk} {plane.status}: {detail}")
    return out


def run_phase(
    label: str,
    action: Any,
    plane_ids_of: Any,
    wanted: str,
    *,
    masters: list[int],
    calls: CallCounter,
    tasks: TaskLog,
    timeout: float,
    emulator: int = 0,
) -> dict[str, Any]:
    """Run ``action`` (which starts operations) and wait until each plane is ``wanted``."""
    cpu_before = workers_cpu(masters)
    emulator_before = workers_cpu([emulator]) if emulator else 0.0
    wall_before = time.monotonic()
    own_before = time.process_time()
    result = action()
    own_cpu = time.process_time() - own_before
    plane_ids = plane_ids_of(result)
    waited, statuses = wait_statuses(plane_ids, wanted, timeout)
    elapsed = time.monotonic() - wall_before
    cpu = workers_cpu(masters) - cpu_before
    # The emulator (moto) shares the cores; its CPU says how much of a task's wall time was
    # spent waiting for the fake AWS rather than in the control plane.
    emulator_cpu = workers_cpu([emulator]) - emulator_before if emulator else 0.0
    time.sleep(0.5)  # let the last "succeeded in" lines reach the log files
    durations = tasks.read_new()
    counts = calls.take()
    reached = sum(1 for s in statuses.values() if s == wanted)
    phase = {
        "phase": label,
        "planes": len(plane_ids),
        "reached": reached,
        "wanted": wanted,
        "seconds_to_all": elapsed if reached == len(plane_ids) else None,
        "seconds_waited_after_requests": waited,
        "request_side_cpu_s": own_cpu,
        "worker_cpu_s": cpu,
        "worker_cpu_s_per_plane": cpu / max(len(plane_ids), 1),
        "emulator_cpu_s": emulator_cpu,
        "aws": counts,
        "aws_calls_per_plane": counts["calls"] / max(len(plane_ids), 1),
        "aws_mutating_per_plane": counts["mutating"] / max(len(plane_ids), 1),
        "tasks": distribution(durations),
        "tasks_per_plane": len(durations) / max(len(plane_ids), 1),
        # Task wall time over (phase time x workers): how much of the phase the workers
        # spent inside a task. Low while planes wait (EKS CREATING) means nobody held a worker.
        "worker_busy_share": sum(durations) / (elapsed * len(masters)) if elapsed else 0.0,
        "failures": failures(plane_ids) if reached != len(plane_ids) else [],
        "loadavg_1m": loadavg(),
    }
    print(
        f"  {label}: {reached}/{len(plane_ids)} {wanted} in {elapsed:.1f} s, "
        f"worker CPU {cpu:.2f} s ({phase['worker_cpu_s_per_plane']:.2f} s/plane), "
        f"AWS calls {counts['calls']} ({phase['aws_calls_per_plane']:.1f}/plane, "
        f"{phase['aws_mutating_per_plane']:.1f} mutating), tasks {len(durations)}, "
        f"max task {phase['tasks'].get('max_s', 0):.3f} s, emulator CPU {emulator_cpu:.1f} s, "
        f"workers busy {100 * phase['worker_busy_share']:.0f}%, load {phase['loadavg_1m']:.2f}"
    )
    for line in phase["failures"][:10]:
        print(f"    {line}")
    return phase


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": CORES,
        "cpu": cpu,
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress when piped
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--planes", type=int, default=50, help="compute planes created at once")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers, concurrency 1")
    parser.add_argument(
        "--accounts", type=int, default=1, help="customer accounts the planes are spread over"
    )
    parser.add_argument("--eks-hold", type=float, default=0.0, help="seconds EKS stays CREATING")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per phase")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU baseline")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    broker_url = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = OUT_DIR / f"computeplanes-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = bench_env(database_url, broker_url, endpoint)
    # A plane is ready once its agent registered: the install step starts a local agent per
    # plane (as `make run` does), which registers with, and long-polls, this web server.
    web_port = free_port()
    env["LAKEPLANE_PUBLIC_URL"] = f"http://127.0.0.1:{web_port}"

    ensure_database(database_url)
    flush_broker(broker_url)
    manage(env, "migrate", "--noinput")
    manage(env, "bootstrap", "--org", ORG_SLUG, "--email", OWNER_EMAIL)

    processes = Processes()
    flipper: EksFlipper | None = None
    try:
        emulator = processes.start(
            "emulator",
            [sys.executable, "-m", "controlplane.sandbox", "serve", "--port", str(port)],
            env,
            logs / "emulator.log",
        )
        wait_for(lambda: emulator_healthy(endpoint), "emulator", 60, emulator)
        print(f"emulator on {endpoint} (pid {emulator.pid})")
        web = processes.start(
            "web",
            [
                *(sys.executable, "-m", "gunicorn", "controlplane.wsgi:application"),
                *("--bind", f"127.0.0.1:{web_port}", "--workers", "2", "--threads", "8"),
                *("--log-level", "warning", "--graceful-timeout", "5"),
            ],
            env,
            logs / "web.log",
        )
        wait_for(lambda: web_healthy(env["LAKEPLANE_PUBLIC_URL"]), "web", 120, web)
        print(f"web (for the planes' agents) on {env['LAKEPLANE_PUBLIC_URL']} (pid {web.pid})")

        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.db import connection

        from controlplane.cloudaccounts.models import CloudAccount
        from controlplane.computeplanes import services
        from controlplane.computeplanes.models import ComputePlane
        from controlplane.core.audit import Actor
        from controlplane.providers.aws.external_id import generate_external_id
        from controlplane.sandbox.control import SandboxControl
        from controlplane.sandbox.customers import create_customer_role, new_account_id
        from controlplane.tenancy.models import Organization, User

        org = Organization.objects.get(slug=ORG_SLUG)
        actor = Actor(user=User.objects.get(email=OWNER_EMAIL), system="bench")
        control = SandboxControl(endpoint)
        # Planes from earlier runs would make names collide; their AWS resources lived in an
        # emulator that is gone, so the rows are simply dropped.
        ComputePlane.objects.filter(organization=org).delete()
        CloudAccount.objects.filter(organization=org).delete()

        def verified_account(label: str) -> CloudAccount:
            account = CloudAccount.objects.create(
                organization=org,
                name=label,
                aws_account_id=new_account_id(),
                external_id=generate_external_id(),
            )
            role = create_customer_role(
                endpoint,
                external_id=account.external_id,
                account_id=account.aws_account_id,
                vendor_principal=env["LAKEPLANE_VENDOR_PRINCIPAL"],
            )
            account.role_arn = role.role_arn
            account.status = "verified"
            account.save()
            return account

        warmup_account = verified_account("bench warm-up")
        single_account = verified_account("bench single")
        many_accounts = [verified_account(f"bench {i}") for i in range(max(args.accounts, 1))]
        all_ids = [a.aws_account_id for a in [warmup_account, single_account, *many_accounts]]
        if args.eks_hold > 0:
            control.hold_new_eks_clusters(True)
            flipper = EksFlipper(control, args.eks_hold)
            flipper.start()
        connection.close()  # not idle in a transaction while the workers run

        worker_logs = []
        masters = []
        for i in range(args.workers):
            log = logs / f"worker{i}.log"
            worker_logs.append(log)
            command = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-Q",
                QUEUES,
                "--concurrency",
                "1",
                "-n",
                f"cpbench{i}@%h",
                "--loglevel",
                "INFO",
            ]
            # The settings leave the root logger to Django's LOGGING (a console handler), so
            # Celery's own lines, "succeeded in Xs" among them, arrive on stderr, not in -f.
            masters.append(processes.start(f"worker{i}", command, env, log))
        for i, worker in enumerate(masters):
            wait_for(
                lambda log=worker_logs[i]: " ready." in log.read_text(errors="replace"),
                f"worker{i}",
                90,
                worker,
            )
        master_pids = [w.pid for w in masters]
        print(
            f"{args.workers} workers ready (pids {master_pids}); logs in {logs.relative_to(REPO)}"
        )

        tasks = TaskLog(worker_logs)
        tasks.read_new()
        idle_before = workers_cpu(master_pids)
        time.sleep(args.idle)
        idle_rate = (workers_cpu(master_pids) - idle_before) / args.idle
        print(f"idle worker CPU: {idle_rate * 1000:.1f} ms per second (all workers)")

        def request(name: str, account: CloudAccount) -> services.ComputePlaneRequest:
            return services.ComputePlaneRequest(
                name=name,
                cloud_account=account,
                region="us-east-1",
                vpc_cidr="10.42.0.0/16",
                availability_zones=2,
                kubernetes_version=services.DEFAULT_KUBERNETES_VERSION,
                endpoint_access="private",
                public_access_cidrs=[],
                control_plane_logging=[],
            )

        def create(names_accounts: list[tuple[str, CloudAccount]]) -> list[str]:
            ids = []
            for name, account in names_accounts:
                plane, _op = services.create_compute_plane(
                    actor=actor, organization=org, request=request(name, account)
                )
                ids.append(plane.pk)
            return ids

        def delete(plane_ids: list[str]) -> list[str]:
            for plane in ComputePlane.objects.filter(pk__in=plane_ids):
                services.delete_compute_plane(actor=actor, plane=plane)
            return plane_ids

        phases = []
        single = CallCounter(control, [single_account.aws_account_id])
        holder: dict[str, list[str]] = {}

        def keep(ids: list[str]) -> list[str]:
            holder["ids"] = ids
            return ids

        common = {
            "masters": master_pids,
            "tasks": tasks,
            "timeout": args.timeout,
            "emulator": emulator.pid,
        }
        # A fresh worker's first tasks import boto3's service models and open connections;
        # a warm-up plane (in its own account, not counted) keeps that one-time cost out of
        # the per-plane figures. It is still printed and kept in the JSON.
        warmup = CallCounter(control, [warmup_account.aws_account_id])
        print("(warm-up) one compute plane on cold workers, not counted")
        warm = [
            run_phase(
                "warm-up create",
                lambda: keep(create([("bench-warmup", warmup_account)])),
                lambda ids: ids,
                "ready",
                calls=warmup,
                **common,
            ),
            run_phase(
                "warm-up delete",
                lambda: delete(holder["ids"]),
                lambda ids: ids,
                "deleted",
                calls=warmup,
                **common,
            ),
        ]
        print("(a) one compute plane")
        phases.append(
            run_phase(
                "single create",
                lambda: keep(create([("bench-single", single_account)])),
                lambda ids: ids,
                "ready",
                calls=single,
                **common,
            )
        )
        phases.append(
            run_phase(
                "single delete",
                lambda: delete(holder["ids"]),
                lambda ids: ids,
                "deleted",
                calls=single,
                **common,
            )
        )
        many = CallCounter(control, [a.aws_account_id for a in many_accounts])
        print(f"(b) {args.planes} compute planes at once over {len(many_accounts)} account(s)")
        planned = [
            (f"bench-{i:03d}", many_accounts[i % len(many_accounts)]) for i in range(args.planes)
        ]
        phases.append(
            run_phase(
                f"{args.planes} concurrent create",
                lambda: keep(create(planned)),
                lambda ids: ids,
                "ready",
                calls=many,
                **common,
            )
        )
        phases.append(
            run_phase(
                f"{args.planes} concurrent delete",
                lambda: delete(holder["ids"]),
                lambda ids: ids,
                "deleted",
                calls=many,
                **common,
            )
        )
        connection.close()

        leftovers = {}
        for account_id in all_ids:
            left = {k: v for k, v in tagged_resources(endpoint, account_id).items() if v}
            if left:
                leftovers[account_id] = left
        problems = tasks.problems()
        alive = all(w.poll() is None for w in masters)
    finally:
        if flipper is not None:
            flipper.stop.set()
            flipper.join(timeout=5)
        # Deleting a plane stops its agent; a run cut short leaves some running.
        with contextlib.suppress(SystemExit):  # manage() exits with its output on failure
            manage(env, "localagents", "stop")
        processes.stop_all()

    all_durations: list[float] = []
    for log in worker_logs:
        for line in log.read_text(errors="replace").splitlines():
            match = SUCCEEDED.search(line)
            if match:
                all_durations.append(float(match.group(3)))
    overall = distribution(all_durations)
    measured = distribution([d for p in phases for d in p["tasks"].get("durations", [])])
    create_phase = phases[2]
    delete_phase = phases[3]
    per_plane_cpu = (create_phase["worker_cpu_s"] + delete_phase["worker_cpu_s"]) / args.planes
    goals = {
        f"single plane create+delete <= {GOAL_CPU_S_PER_PLANE} worker CPU-s": (
            phases[0]["worker_cpu_s"] + phases[1]["worker_cpu_s"] <= GOAL_CPU_S_PER_PLANE
        ),
        f"{args.planes} concurrent: create+delete <= {GOAL_CPU_S_PER_PLANE} CPU-s per plane": (
            per_plane_cpu <= GOAL_CPU_S_PER_PLANE
        ),
        f"all {args.planes} ready": create_phase["reached"] == args.planes,
        f"all {args.planes} deleted": delete_phase["reached"] == args.planes,
        f"no task over {GOAL_MAX_TASK_S:.0f} s": overall.get("max_s", 0.0) <= GOAL_MAX_TASK_S,
        "nothing tagged left in any account": not leftovers,
        "no error in the worker logs": not problems,
        "workers alive throughout": alive,
    }

    print()
    header = (
        f"{'phase':<24} {'planes':>6} {'done in s':>9} {'CPU-s':>7} {'CPU-s/pl':>8} "
        f"{'calls/pl':>8} {'mut/pl':>6} {'tasks':>6} {'p50 s':>6} {'p99 s':>6} {'max s':>6} "
        f"{'busy':>5}"
    )
    print(header)
    for p in [*warm, *phases]:
        t = p["tasks"]
        done = f"{p['seconds_to_all']:.1f}" if p["seconds_to_all"] is not None else "-"
        print(
            f"{p['phase']:<24} {p['planes']:>6} {done:>9} {p['worker_cpu_s']:>7.2f} "
            f"{p['worker_cpu_s_per_plane']:>8.2f} {p['aws_calls_per_plane']:>8.1f} "
            f"{p['aws_mutating_per_plane']:>6.1f} {t.get('count', 0):>6} "
            f"{t.get('p50_s', 0):>6.3f} {t.get('p99_s', 0):>6.3f} {t.get('max_s', 0):>6.3f} "
            f"{100 * p['worker_busy_share']:>4.0f}%"
        )
    print(
        f"all tasks incl. warm-up: {overall.get('count', 0)}, p50 {overall.get('p50_s', 0):.3f} s, "
        f"p99 {overall.get('p99_s', 0):.3f} s, max {overall.get('max_s', 0):.3f} s"
    )
    print(
        f"measured phases only: {measured.get('count', 0)}, p50 {measured.get('p50_s', 0):.3f} s, "
        f"p99 {measured.get('p99_s', 0):.3f} s, max {measured.get('max_s', 0):.3f} s"
    )
    print(f"worker CPU per plane, {args.planes} concurrent, create+delete: {per_plane_cpu:.2f} s")
    print(f"idle worker CPU: {idle_rate * 1000:.1f} ms/s; load average (1 min) now {loadavg():.2f}")
    if leftovers:
        print(f"LEFT IN THE EMULATOR: {json.dumps(leftovers)}")
    for line in problems[:20]:
        print(f"  log: {line}")
    for goal, met in goals.items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")

    report = {
        "date": stamp,
        "machine": machine(),
        "command": " ".join([".venv/bin/python", "bench/computeplanes.py", *sys.argv[1:]]),
        "settings": {
            "workers": args.workers,
            "concurrency_per_worker": 1,
            "queues": QUEUES,
            "accounts_for_concurrent_phase": len(many_accounts),
            "eks_hold_s": args.eks_hold,
            "broker": "redis",
        },
        "idle_worker_cpu_s_per_s": idle_rate,
        "warmup_phases": warm,
        "phases": phases,
        "all_tasks": overall,
        "measured_tasks": measured,
        "worker_cpu_s_per_plane_concurrent": per_plane_cpu,
        "eks_clusters_flipped": len(flipper.flipped) if flipper else 0,
        "leftovers": leftovers,
        "log_problems": problems,
        "goals": goals,
    }
    target = OUT_DIR / f"computeplanes-{stamp}.json"
    target.write_text(json.dumps(report, indent=2))
    print(f"wrote {target.relative_to(REPO)}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
