"""Test-only workflows that exercise every outcome of the operation engine.

Imported by the engine tests and, through ``CELERY_IMPORTS=tests.core.sample_workflows``, by
the real Celery workers the end-to-end tests start. Steps keep their evidence in real rows:
what ran goes to ``operation.resources`` through ``record_resource`` (the path real steps use
to record AWS ids), and the finish hooks write audit events, so a test counts rows instead of
trusting in-process state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    PermanentError,
    RetryLater,
    Step,
    Workflow,
    record_resource,
    register_workflow,
)

HOOK_SUCCEEDED = "test.hook.succeeded"
HOOK_FAILED = "test.hook.failed"
# The crashable step gives up after this long without its flag file, so a broken test can
# never leave a worker blocked for good.
CRASHABLE_FLAG_WAIT_SECONDS = 90.0


def _append(operation: Operation, key: str, value: object) -> None:
    current = operation.resources.get(key, [])
    record_resource(operation, key, [*current, value])


def _hook(action: str) -> Callable[[Operation], None]:
    def hook(operation: Operation) -> None:
        audit.record(
            actor=Actor.system_actor("test"),
            organization=operation.organization,
            action=action,
            target=operation,
        )

    return hook


def _ran(name: str) -> Step:
    def run(operation: Operation) -> str:
        _append(operation, "ran", name)
        return f"{name} done"

    return Step(name, run)


def _scripted(operation: Operation) -> str | None:
    """Follow ``params["script"]``: one outcome per call, the last one repeating.

    ``retry`` → RetryLater(delay=0), ``error`` → an unexpected RuntimeError,
    ``permanent`` → PermanentError, ``ok`` → done.
    """
    script: list[str] = operation.params["script"]
    calls = len(operation.resources.get("calls", []))
    outcome = script[min(calls, len(script) - 1)]
    _append(operation, "calls", outcome)
    if outcome == "retry":
        raise RetryLater("still creating", delay=0)
    if outcome == "error":
        raise RuntimeError("connection reset by peer")
    if outcome == "permanent":
        raise PermanentError("quota_exceeded", "The account's vCPU quota is exhausted.")
    return "scripted done"


def _crashable(operation: Operation) -> str:
    """Record the worker's pid, then block until the test's flag file exists."""
    _append(operation, "pids", os.getpid())
    flag = Path(operation.params["flag"])
    deadline = time.monotonic() + CRASHABLE_FLAG_WAIT_SECONDS
    while not flag.exists():
        if time.monotonic() > deadline:
            raise PermanentError("flag_timeout", f"{flag} never appeared")
        time.sleep(0.05)
    return "unblocked"


TWO_STEPS = register_workflow(
    Workflow(
        kind="test.two_steps",
        steps=[_ran("first"), _ran("second")],
        on_succeeded=_hook(HOOK_SUCCEEDED),
        on_failed=_hook(HOOK_FAILED),
    )
)

SCRIPTED = register_workflow(
    Workflow(
        kind="test.scripted",
        steps=[_ran("prepare"), Step("scripted", _scripted), _ran("finish")],
        on_succeeded=_hook(HOOK_SUCCEEDED),
        on_failed=_hook(HOOK_FAILED),
    )
)

CRASHABLE = register_workflow(
    Workflow(
        kind="test.crashable",
        steps=[Step("block", _crashable), _ran("after")],
        on_succeeded=_hook(HOOK_SUCCEEDED),
        on_failed=_hook(HOOK_FAILED),
    )
)
