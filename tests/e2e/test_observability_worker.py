"""The request id and organization reach a real Celery worker's log lines.

A real ``celery -A controlplane worker`` (prefork) on Redis runs an operation that this process
started inside a request's context; its JSON log lines for the operation's tasks carry that
request id and organization (the task headers carried them across).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from controlplane.core.audit import Actor
from controlplane.core.models import Operation
from controlplane.core.observability import bound_context
from controlplane.core.workflows import start_operation
from controlplane.tenancy.models import Organization
from tests.core import sample_workflows
from tests.e2e.test_worker_crash import Workers, workers  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_request_id_and_organization_reach_the_workers_log_lines(
    workers: Workers,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    worker = workers.start()
    org = Organization.objects.create(slug=f"obs-{uuid.uuid4().hex[:8]}", name="Obs")
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    with bound_context(request_id, org.id):
        # transactional_db: this commits, so on_commit publishes advance_operation to Redis.
        op = start_operation(
            actor=Actor.system_actor("test"),
            organization=org,
            kind=sample_workflows.TWO_STEPS.kind,
            target=org,
            params={},
        )

    def finished() -> bool:
        op.refresh_from_db()
        return op.status == "succeeded" and '"lakeplane.task"' in worker.output()

    workers.wait_for(finished, "the operation to succeed")
    lines = json_lines(worker.output())
    tasks = [line for line in lines if line["logger"] == "lakeplane.task"]
    assert tasks, workers.logs()
    ours = [line for line in tasks if line["request_id"] == request_id]
    assert ours, workers.logs()
    assert all(line["organization_id"] == org.id for line in ours)
    assert {line["task"] for line in ours} == {"controlplane.core.tasks.advance_operation"}
    assert all(line["outcome"] == "success" for line in ours)
    assert Operation.objects.get(pk=op.pk).status == "succeeded"
