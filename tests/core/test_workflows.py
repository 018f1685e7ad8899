"""The operation engine against PostgreSQL, without a broker.

Deliveries of ``advance_operation`` are played by hand (``claim_next_step`` then
``run_claimed_step``), which lets a test stand where a second worker or a duplicate message
would: holding a lease, arriving late, arriving twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from controlplane.celery import app as celery_app
from controlplane.core import workflows
from controlplane.core.audit import Actor
from controlplane.core.models import AuditEvent, Operation, OperationStep
from controlplane.core.roles import Role
from controlplane.core.tasks import advance_operation
from controlplane.core.workflows import Claim, Outcome, claim_next_step, run_claimed_step
from controlplane.tenancy.models import Organization
from tests.conftest import Caller
from tests.core import sample_workflows
from tests.core.sample_workflows import HOOK_FAILED, HOOK_SUCCEEDED

pytestmark = pytest.mark.django_db

MAX_ATTEMPTS = 5


@pytest.fixture(autouse=True)
def _engine_settings() -> Iterator[None]:
    with override_settings(LAKEPLANE_STEP_MAX_ATTEMPTS=MAX_ATTEMPTS):
        yield


def start(org: Organization, kind: str, **params: object) -> Operation:
    return workflows.start_operation(
        actor=Actor.system_actor("test"), organization=org, kind=kind, target=org, params=params
    )


def claim(op: Operation) -> Claim:
    claimed = claim_next_step(op.id)
    assert isinstance(claimed, Claim), f"expected a claim, got {claimed}"
    return claimed


def drive(op: Operation, *, max_deliveries: int = 100) -> list[Outcome]:
    """Deliver advance_operation until the operation finishes; returns every outcome."""
    outcomes: list[Outcome] = []
    for _ in range(max_deliveries):
        claimed = claim_next_step(op.id)
        outcome = claimed if isinstance(claimed, Outcome) else run_claimed_step(claimed)
        outcomes.append(outcome)
        if outcome.done:
            op.refresh_from_db()
            return outcomes
    raise AssertionError(f"{op.id} did not finish in {max_deliveries} deliveries")


def expire_lease(op: Operation) -> None:
    """What time does to a lease whose worker died: it ends."""
    Operation.objects.filter(pk=op.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def steps_of(op: Operation) -> list[OperationStep]:
    return list(OperationStep.objects.filter(operation=op).order_by("position"))


def events(op: Operation, action: str) -> int:
    return AuditEvent.objects.filter(target_id=op.id, action=action).count()


# --- the happy path -----------------------------------------------------------------------


def test_steps_run_in_order_with_progress_and_timestamps(org: Organization) -> None:
    op = start(org, "test.two_steps")
    assert op.status == "queued"
    assert [s.status for s in steps_of(op)] == ["pending", "pending"]
    assert events(op, "operation.test.two_steps.started") == 1

    first = claim(op)
    op.refresh_from_db()
    assert op.status == "running"
    assert op.lease_until is not None
    assert [s.status for s in steps_of(op)] == ["running", "pending"]
    assert run_claimed_step(first) == Outcome(next_countdown=0)
    op.refresh_from_db()
    assert op.progress == 50
    assert op.lease_until is None
    assert [s.status for s in steps_of(op)] == ["succeeded", "pending"]

    drive(op)
    assert op.status == "succeeded"
    assert op.progress == 100
    assert op.finished_at is not None
    assert op.resources["ran"] == ["first", "second"]
    steps = steps_of(op)
    assert [s.status for s in steps] == ["succeeded", "succeeded"]
    assert [s.attempts for s in steps] == [1, 1]
    assert [s.detail for s in steps] == ["first done", "second done"]
    for step in steps:
        assert step.started_at is not None
        assert step.finished_at is not None
        assert step.started_at <= step.finished_at
    assert steps[0].finished_at <= steps[1].started_at
    assert events(op, "operation.test.two_steps.succeeded") == 1
    assert events(op, HOOK_SUCCEEDED) == 1
    assert events(op, HOOK_FAILED) == 0


def test_retry_later_reschedules_without_failing(org: Organization) -> None:
    op = start(org, "test.scripted", script=["retry", "retry", "retry", "ok"])
    outcomes = drive(op)
    assert op.status == "succeeded"
    assert op.resources["calls"] == ["retry", "retry", "retry", "ok"]
    # prepare, 3 polls (each asks to come back after its delay), scripted done, finish, finish op
    assert [o.next_countdown for o in outcomes[1:4]] == [0, 0, 0]
    scripted = steps_of(op)[1]
    assert scripted.status == "succeeded"
    assert scripted.attempts == 4
    assert events(op, "operation.test.scripted.succeeded") == 1


def test_waiting_step_shows_running_with_its_detail(org: Organization) -> None:
    op = start(org, "test.scripted", script=["retry", "ok"])
    run_claimed_step(claim(op))  # prepare
    outcome = run_claimed_step(claim(op))
    assert outcome == Outcome(next_countdown=0)
    op.refresh_from_db()
    assert op.status == "running"
    assert op.lease_until is None  # a waiting operation holds no lease
    scripted = steps_of(op)[1]
    assert (scripted.status, scripted.detail, scripted.finished_at) == (
        "running",
        "still creating",
        None,
    )


# --- failures -----------------------------------------------------------------------------


def test_permanent_error_fails_the_operation_and_runs_on_failed_once(org: Organization) -> None:
    op = start(org, "test.scripted", script=["permanent"])
    drive(op)
    assert op.status == "failed"
    assert (op.error_code, op.error_message) == (
        "quota_exceeded",
        "The account's vCPU quota is exhausted.",
    )
    assert op.finished_at is not None
    assert op.progress == 33
    steps = steps_of(op)
    assert [s.status for s in steps] == ["succeeded", "failed", "pending"]
    assert steps[1].attempts == 1
    assert steps[1].finished_at is not None
    assert op.resources["ran"] == ["prepare"]
    assert events(op, HOOK_FAILED) == 1
    assert events(op, HOOK_SUCCEEDED) == 0
    assert events(op, "operation.test.scripted.failed") == 1
    assert AuditEvent.objects.get(action="operation.test.scripted.failed").data == {
        "error": "quota_exceeded"
    }
    # A late duplicate delivery changes nothing.
    assert claim_next_step(op.id) == Outcome(done=True)
    assert events(op, HOOK_FAILED) == 1


def test_unexpected_errors_retry_with_backoff_then_fail(org: Organization) -> None:
    op = start(org, "test.scripted", script=["error"])
    outcomes = drive(op)
    assert op.status == "failed"
    assert op.error_code == "internal_error"
    assert f"failed after {MAX_ATTEMPTS} attempts" in op.error_message
    assert "connection reset by peer" in op.error_message
    scripted = steps_of(op)[1]
    assert (scripted.status, scripted.attempts) == ("failed", MAX_ATTEMPTS)
    assert op.resources["calls"] == ["error"] * MAX_ATTEMPTS
    # Backoff doubles between attempts: 2, 4, 8, 16 seconds before attempts 2..5.
    assert [o.next_countdown for o in outcomes[1:MAX_ATTEMPTS]] == [2.0, 4.0, 8.0, 16.0]
    assert events(op, HOOK_FAILED) == 1


def test_unexpected_error_then_success_recovers(org: Organization) -> None:
    op = start(org, "test.scripted", script=["error", "error", "ok"])
    drive(op)
    assert op.status == "succeeded"
    assert steps_of(op)[1].attempts == 3
    assert events(op, "operation.test.scripted.succeeded") == 1


def test_polls_do_not_spend_the_error_budget(org: Organization) -> None:
    """A step that waited on AWS for many polls still gets its retries for a real error."""
    polls = MAX_ATTEMPTS + 3
    op = start(org, "test.scripted", script=["retry"] * polls + ["error", "ok"])
    drive(op)
    assert op.status == "succeeded", op.error_message
    assert steps_of(op)[1].attempts == polls + 2


# --- leases, crashes and duplicate deliveries --------------------------------------------


def test_a_lease_held_by_another_worker_is_respected(org: Organization) -> None:
    op = start(org, "test.two_steps")
    held = claim(op)  # worker A holds the first step
    duplicate = claim_next_step(op.id)  # worker B gets a copy of the message
    assert isinstance(duplicate, Outcome)
    assert not duplicate.done
    assert duplicate.next_countdown is not None
    assert 0 < duplicate.next_countdown <= 60.2  # comes back when A's lease runs out
    assert steps_of(op)[0].attempts == 1
    run_claimed_step(held)
    drive(op)
    assert op.status == "succeeded"
    assert op.resources["ran"] == ["first", "second"]


def test_an_expired_lease_is_taken_over_and_the_step_runs_again(org: Organization) -> None:
    op = start(org, "test.two_steps")
    claim(op)  # this worker dies without settling
    expire_lease(op)
    drive(op)
    assert op.status == "succeeded"
    assert [s.attempts for s in steps_of(op)] == [2, 1]
    assert events(op, "operation.test.two_steps.succeeded") == 1


def test_a_worker_whose_lease_was_taken_over_cannot_settle(org: Organization) -> None:
    """The slow worker's late answer must not finish an operation a second time."""
    op = start(org, "test.scripted", script=["permanent"])
    run_claimed_step(claim(op))  # prepare
    slow = claim(op)
    expire_lease(op)
    drive(op)  # another worker takes over and fails the operation
    assert op.status == "failed"
    assert run_claimed_step(slow) == Outcome(done=True)
    op.refresh_from_db()
    assert op.status == "failed"
    assert events(op, HOOK_FAILED) == 1
    assert events(op, "operation.test.scripted.failed") == 1


def test_a_stale_worker_does_not_overwrite_the_new_owners_step(org: Organization) -> None:
    op = start(org, "test.two_steps")
    slow = claim(op)
    expire_lease(op)
    owner = claim(op)
    assert run_claimed_step(slow) == Outcome(done=True)
    first = steps_of(op)[0]
    assert first.status == "running"  # still the new owner's
    run_claimed_step(owner)
    drive(op)
    assert op.status == "succeeded"
    assert events(op, "operation.test.two_steps.succeeded") == 1


def test_a_step_that_keeps_killing_its_worker_fails_instead_of_looping(
    org: Organization,
) -> None:
    op = start(org, "test.two_steps")
    for _ in range(MAX_ATTEMPTS):
        claim(op)
        expire_lease(op)  # the worker died mid-step, again
    assert claim_next_step(op.id) == Outcome(done=True)
    op.refresh_from_db()
    assert op.status == "failed"
    assert op.error_code == "worker_lost"
    first = steps_of(op)[0]
    assert (first.status, first.attempts) == ("failed", MAX_ATTEMPTS)
    assert events(op, HOOK_FAILED) == 1


def test_a_finished_operation_ignores_duplicate_deliveries(org: Organization) -> None:
    op = start(org, "test.two_steps")
    drive(op)
    for _ in range(3):
        assert claim_next_step(op.id) == Outcome(done=True)
    op.refresh_from_db()
    assert op.status == "succeeded"
    assert [s.attempts for s in steps_of(op)] == [1, 1]
    assert op.resources["ran"] == ["first", "second"]
    assert events(op, "operation.test.two_steps.succeeded") == 1


def test_unknown_or_deleted_operation_is_a_no_op() -> None:
    assert claim_next_step("op_doesnotexist") == Outcome(done=True)


# --- through the Celery task, eagerly ------------------------------------------------------


@pytest.fixture
def eager() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


@pytest.mark.usefixtures("eager")
def test_advance_delivered_twice_writes_the_success_event_once(
    org: Organization,
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[list[Any]]],
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        op = start(org, "test.two_steps")
    assert len(callbacks) == 1  # the first advance is sent when the transaction commits
    op.refresh_from_db()
    assert op.status == "succeeded"
    advance_operation.apply(args=(op.id,))  # the broker delivers it again
    advance_operation.apply(args=(op.id,))
    op.refresh_from_db()
    assert op.status == "succeeded"
    assert op.resources["ran"] == ["first", "second"]
    assert events(op, "operation.test.two_steps.succeeded") == 1
    assert events(op, HOOK_SUCCEEDED) == 1


# --- retry --------------------------------------------------------------------------------


def test_retry_resumes_from_the_failed_step(org: Organization) -> None:
    op = start(org, "test.scripted", script=["permanent", "ok"])
    drive(op)
    assert op.status == "failed"

    workflows.retry_operation(actor=Actor.system_actor("test"), operation=op)
    op.refresh_from_db()
    assert (op.status, op.error_code, op.error_message, op.finished_at) == ("queued", "", "", None)
    assert [s.status for s in steps_of(op)] == ["succeeded", "pending", "pending"]
    assert events(op, "operation.test.scripted.retried") == 1

    drive(op)
    assert op.status == "succeeded"
    assert (op.error_code, op.error_message) == ("", "")
    assert op.resources["ran"] == ["prepare", "finish"]  # prepare did not run again
    assert op.resources["calls"] == ["permanent", "ok"]
    assert [s.attempts for s in steps_of(op)] == [1, 1, 1]
    assert events(op, HOOK_FAILED) == 1
    assert events(op, HOOK_SUCCEEDED) == 1


# --- the API ------------------------------------------------------------------------------

OPERATION_FIELDS = {
    "id", "kind", "target", "status", "progress", "steps", "error", "created_at", "finished_at",
}  # fmt: skip
STEP_FIELDS = {"name", "status", "started_at", "finished_at", "detail"}


def test_operations_list_and_detail_match_the_contract(org: Organization, owner: Caller) -> None:
    client = owner.client
    failed = start(org, "test.scripted", script=["permanent"])
    drive(failed)
    running = start(org, "test.two_steps")
    run_claimed_step(claim(running))

    listing = client.get(f"/api/v1/orgs/{org.slug}/operations")
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) >= {"results", "next"}
    by_id = {item["id"]: item for item in body["results"]}
    assert set(by_id) >= {failed.id, running.id}

    detail = client.get(f"/api/v1/orgs/{org.slug}/operations/{failed.id}")
    assert detail.status_code == 200
    item = detail.json()
    assert by_id[failed.id] == item
    assert set(item) >= OPERATION_FIELDS
    assert item["kind"] == "test.scripted"
    assert item["target"] == {"type": "organization", "id": str(org.pk)}
    assert item["status"] == "failed"
    assert item["progress"] == 33
    assert item["error"] == {
        "code": "quota_exceeded",
        "message": "The account's vCPU quota is exhausted.",
    }
    assert item["finished_at"].endswith("Z")
    assert [s["name"] for s in item["steps"]] == ["prepare", "scripted", "finish"]
    assert [s["status"] for s in item["steps"]] == ["succeeded", "failed", "pending"]
    for step in item["steps"]:
        assert set(step) >= STEP_FIELDS

    live = by_id[running.id]
    assert (live["status"], live["progress"], live["error"], live["finished_at"]) == (
        "running",
        50,
        None,
        None,
    )


def test_retry_endpoint_answers_202_for_failed_and_409_otherwise(
    org: Organization, owner: Caller, make_caller: Callable[..., Caller]
) -> None:
    client = owner.client
    failed = start(org, "test.scripted", script=["permanent", "ok"])
    drive(failed)
    url = f"/api/v1/orgs/{org.slug}/operations/{failed.id}/retry"

    viewer = make_caller(org, Role.VIEWER)
    assert viewer.client.post(url).status_code == 403

    answer = client.post(url)
    assert answer.status_code == 202
    assert answer.json()["id"] == failed.id
    assert answer.json()["status"] == "queued"
    assert answer.json()["error"] is None

    again = client.post(url)  # queued now, not failed
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    assert again.json()["status"] == 409

    succeeded = start(org, "test.two_steps")
    drive(succeeded)
    late = client.post(f"/api/v1/orgs/{org.slug}/operations/{succeeded.id}/retry")
    assert late.status_code == 409

    other = Organization.objects.create(slug="other-org", name="Other")
    foreign = start(other, "test.scripted", script=["permanent"])
    drive(foreign)
    assert client.post(f"/api/v1/orgs/{org.slug}/operations/{foreign.id}/retry").status_code == 404


def test_sample_workflows_are_registered() -> None:
    for workflow in (
        sample_workflows.TWO_STEPS,
        sample_workflows.SCRIPTED,
        sample_workflows.CRASHABLE,
    ):
        assert workflows.get_workflow(workflow.kind) is workflow
