"""The stalled-operation sweep (core/workflows.py ``resume_stalled_operations``) on PostgreSQL.

A lost message is played by not sending it: pytest-django's ``db`` fixture never runs
``on_commit`` callbacks, so an operation started here is exactly one whose web process died
between the commit and the send. The sweep's own sends run eagerly through Celery, so each
resumed operation is really driven by ``advance_operation``. The multi-process version (real
workers SIGKILLed) is tests/e2e/test_horizontal_scale.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from controlplane.core.models import Operation
from controlplane.core.tasks import resume_stalled
from controlplane.core.workflows import claim_next_step, resume_stalled_operations
from controlplane.tenancy.models import Organization
from tests.core import sample_workflows
from tests.core.test_workflows import eager, events, expire_lease, start, steps_of

pytestmark = pytest.mark.django_db
__all__ = ["eager"]  # the fixture, imported for _settings

STALLED = 300


@pytest.fixture(autouse=True)
def _settings(eager: None) -> Iterator[None]:
    with override_settings(
        LAKEPLANE_STALLED_OPERATION_SECONDS=STALLED, LAKEPLANE_STEP_MAX_ATTEMPTS=3
    ):
        yield


Capture = Callable[..., AbstractContextManager[list[Any]]]


def later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


def test_an_operation_whose_first_message_was_lost_is_resumed_once_overdue(
    org: Organization, django_capture_on_commit_callbacks: Capture
) -> None:
    op = start(org, sample_workflows.TWO_STEPS.kind)  # its message is never sent
    assert op.next_delivery_at is not None
    assert resume_stalled_operations(now=later(STALLED - 5)) == []  # not overdue yet
    op.refresh_from_db()
    assert op.status == "queued"

    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stalled_operations(now=later(STALLED + 5)) == [op.id]
    op.refresh_from_db()
    assert op.status == "succeeded"
    assert op.next_delivery_at is None
    assert op.resources["ran"] == ["first", "second"]
    assert events(op, "operation.test.two_steps.succeeded") == 1
    assert resume_stalled_operations(now=later(10 * STALLED)) == []  # finished: left alone


def test_a_dead_workers_leased_step_is_taken_over_and_counted(
    org: Organization, django_capture_on_commit_callbacks: Capture
) -> None:
    op = start(org, sample_workflows.TWO_STEPS.kind)
    claim_next_step(op.id)  # a worker claimed the first step and died: no settle, no message
    op.refresh_from_db()
    assert op.status == "running"
    assert resume_stalled_operations() == []  # its lease still holds
    expire_lease(op)  # a second ago
    assert resume_stalled_operations(now=later(STALLED - 5)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stalled_operations(now=later(STALLED + 5)) == [op.id]
    op.refresh_from_db()
    assert op.status == "succeeded"
    first, second = steps_of(op)
    assert (first.attempts, second.attempts) == (2, 1)  # the dead run, then the resumed one
    assert events(op, "operation.test.two_steps.succeeded") == 1


def test_a_step_that_keeps_killing_workers_is_failed_through_the_sweep(
    org: Organization, django_capture_on_commit_callbacks: Capture
) -> None:
    op = start(org, sample_workflows.TWO_STEPS.kind)
    for _ in range(3):  # LAKEPLANE_STEP_MAX_ATTEMPTS
        claim_next_step(op.id)
        expire_lease(op)
    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stalled_operations(now=later(STALLED + 5)) == [op.id]
    op.refresh_from_db()
    assert (op.status, op.error_code) == ("failed", "worker_lost")
    assert events(op, sample_workflows.HOOK_FAILED) == 1


def test_a_waiting_operation_is_not_resumed_before_its_poll_is_overdue(
    org: Organization, django_capture_on_commit_callbacks: Capture
) -> None:
    op = start(org, sample_workflows.SCRIPTED.kind, script=["retry", "ok"])
    Operation.objects.filter(pk=op.pk).update(next_delivery_at=later(1000))  # a long EKS poll
    assert resume_stalled_operations(now=later(1000 + STALLED - 5)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert resume_stalled_operations(now=later(1000 + STALLED + 5)) == [op.id]


def test_the_periodic_task_is_scheduled_and_reports_what_it_resumed(
    org: Organization, settings: Any
) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE["resume-stalled-operations"]
    assert schedule["task"] == resume_stalled.name
    start(org, sample_workflows.TWO_STEPS.kind)
    Operation.objects.update(next_delivery_at=timezone.now() - timedelta(seconds=STALLED + 5))
    assert resume_stalled.apply().get() == 1
