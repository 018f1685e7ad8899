"""A real Celery worker killed mid-step: the operation still ends exactly once.

The worker is a real ``celery -A controlplane worker`` (prefork, one process) on Redis,
working against the same PostgreSQL test database as this test. Case A kills the pool
process running the step (reject_on_worker_lost requeues the message at once); case B kills
the whole worker, so nothing rejects anything and the message only comes back because Redis
makes an unacknowledged message visible again after CELERY_VISIBILITY_TIMEOUT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from controlplane.core.audit import Actor
from controlplane.core.models import AuditEvent, Operation, OperationStep
from controlplane.core.workflows import start_operation
from controlplane.tenancy.models import Organization
from tests.core import sample_workflows  # registers test.crashable in this process too

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2
# Short enough to watch Redis redeliver a dead worker's message, long enough that a live
# step (well under a second here once unblocked) is never redelivered under it.
VISIBILITY_TIMEOUT = 5
WAIT = 60.0  # the bound on every wait below; a healthy run needs a few seconds


def _broker_url() -> str:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://… (the worker and this test share it)")
    return url


def _database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill_group(self) -> None:
        """SIGKILL the main process and its pool children (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT)


@dataclass
class Workers:
    broker_url: str
    tmp_path: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, **overrides: str) -> Worker:
        """A worker with this module's settings; ``overrides`` replace or add variables."""
        log = self.tmp_path / f"worker-{len(self.started)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_IMPORTS": "tests.core.sample_workflows",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "LAKEPLANE_OPERATION_LEASE_SECONDS": str(LEASE_SECONDS),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "controlplane",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "-Q",
                    "provisioning,default",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"crash-{uuid.uuid4().hex[:8]}@%h",
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so case B can kill it whole
            )
        worker = Worker(process=process, log=log)
        self.started.append(worker)
        self.wait_for(lambda: "ready." in worker.output(), "the worker to be ready")
        return worker

    def logs(self) -> str:
        return "\n".join(
            f"----- {w.log.name} (exit {w.process.poll()}) -----\n{w.output()}"
            for w in self.started
        )

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.started and self.started[-1].process.poll() is not None:
                break  # the worker we rely on is gone; waiting longer cannot help
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}\n{self.logs()}")


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[Workers]:
    broker_url = _broker_url()
    redis.Redis.from_url(broker_url).flushdb()  # no leftover messages from an earlier run
    pool = Workers(broker_url=broker_url, tmp_path=tmp_path)
    try:
        yield pool
    finally:
        for worker in pool.started:
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait(timeout=WAIT)


def start_crashable(flag: Path) -> Operation:
    org = Organization.objects.create(slug=f"crash-{uuid.uuid4().hex[:8]}", name="Crash")
    # transactional_db: this commits, so on_commit sends advance_operation to Redis.
    return start_operation(
        actor=Actor.system_actor("test"),
        organization=org,
        kind=sample_workflows.CRASHABLE.kind,
        target=org,
        params={"flag": str(flag)},
    )


def recorded_pids(op: Operation) -> list[int]:
    op.refresh_from_db()
    pids: list[int] = op.resources.get("pids", [])
    return pids


def finished(op: Operation) -> bool:
    op.refresh_from_db()
    return op.is_terminal


def assert_succeeded_exactly_once(op: Operation, workers: Workers) -> None:
    op.refresh_from_db()
    assert op.status == "succeeded", f"{op.status} {op.error_message}\n{workers.logs()}"
    assert op.progress == 100
    assert (
        AuditEvent.objects.filter(
            target_id=op.id, action="operation.test.crashable.succeeded"
        ).count()
        == 1
    )
    assert (
        AuditEvent.objects.filter(target_id=op.id, action=sample_workflows.HOOK_SUCCEEDED).count()
        == 1
    )
    assert not AuditEvent.objects.filter(target_id=op.id, action__endswith="failed").exists()
    block, after = OperationStep.objects.filter(operation=op).order_by("position")
    assert (block.status, block.attempts) == ("succeeded", 2)
    assert (after.status, after.attempts) == ("succeeded", 1)
    assert op.resources["ran"] == ["after"]


def test_killed_pool_process_is_redelivered_and_succeeds_once(
    workers: Workers, tmp_path: Path
) -> None:
    worker = workers.start()
    flag = tmp_path / "flag-a"
    op = start_crashable(flag)

    pids = workers.wait_for(lambda: recorded_pids(op), "the step to record its pid")
    assert pids[0] != worker.process.pid  # it ran in a pool process, not the main one
    os.kill(pids[0], signal.SIGKILL)
    flag.touch()

    workers.wait_for(lambda: finished(op), "the operation to finish")
    assert_succeeded_exactly_once(op, workers)
    second = recorded_pids(op)
    assert len(second) == 2
    assert second[1] != pids[0]  # the redelivered message ran in the replacement process
    assert worker.process.poll() is None  # the worker itself survived
    assert "WorkerLostError" in worker.output()


def test_killed_worker_message_returns_after_visibility_timeout(
    workers: Workers, tmp_path: Path
) -> None:
    first = workers.start()
    flag = tmp_path / "flag-b"
    op = start_crashable(flag)

    workers.wait_for(lambda: recorded_pids(op), "the step to record its pid")
    first.kill_group()  # nobody is left to reject or ack the message
    flag.touch()
    op.refresh_from_db()
    assert op.status == "running"

    # Redis hands the unacked message out again once it is older than the visibility
    # timeout; a worker sweeps for such messages when it starts, so start it after that.
    time.sleep(VISIBILITY_TIMEOUT + 1)
    second = workers.start()
    workers.wait_for(lambda: finished(op), "the operation to finish after redelivery")
    assert_succeeded_exactly_once(op, workers)
    assert len(recorded_pids(op)) == 2
    assert second.process.poll() is None
