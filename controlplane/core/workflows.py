"""Durable workflows: an Operation is an ordered list of steps, each run by one Celery task.

A workflow kind is registered once with its step functions. ``start_operation`` writes the
Operation and its steps and, when the transaction commits, sends ``advance_operation`` with
the operation's id. Each delivery of that task runs at most one step:

1. claim: lock the row, skip if finished, respect another worker's lease, mark the step
   running and lease it (committed at once so progress is visible). Each claim bumps
   ``Operation.attempts``, which doubles as the lease's fencing token;
2. run the step function, outside any transaction: a step records the ids it creates on
   ``operation.resources`` as it goes (``record_resource``), so a resumed step adopts them;
3. settle: lock the row again and record the outcome, unless the lease was lost meanwhile
   (another worker took the step over after the lease ran out; its answer counts, not ours).

A claim that finds an expired lease knows the previous run never settled: its worker died.
That counts as a failure of the step, like an unexpected error, so a step that kills its
worker every time fails the operation instead of being redelivered forever.

Step functions signal outcomes explicitly, kopf-style: return for done, raise ``RetryLater``
to be called again after a delay (AWS still creating), raise ``PermanentError`` to fail the
operation for good. Anything else is unexpected: retried with backoff, then failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, models, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

from controlplane.core import audit, representation
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict
from controlplane.core.models import Operation, OperationStatus, OperationStep, StepStatus

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Model)


class RetryLater(Exception):
    """Not done yet; call the step again after ``delay`` seconds."""

    def __init__(self, detail: str, *, delay: float = 5.0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.delay = delay


class PermanentError(Exception):
    """The step cannot succeed by trying again; the operation fails with this error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


StepFunction = Callable[[Operation], "str | None"]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction


@dataclass(frozen=True)
class Workflow:
    kind: str
    steps: Sequence[Step]
    # Called inside the transaction that finishes the operation (update the target's status).
    on_succeeded: Callable[[Operation], None] | None = None
    on_failed: Callable[[Operation], None] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, Workflow] = {}


def register_workflow(workflow: Workflow) -> Workflow:
    if workflow.kind in _REGISTRY and _REGISTRY[workflow.kind] is not workflow:
        raise ValueError(f"workflow {workflow.kind!r} is registered twice")
    _REGISTRY[workflow.kind] = workflow
    return workflow


def get_workflow(kind: str) -> Workflow:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"no workflow registered for kind {kind!r}") from None


def start_operation(
    *,
    actor: Actor,
    organization: Any,
    kind: str,
    target: models.Model,
    params: dict[str, Any] | None = None,
) -> Operation:
    """Create the operation and its steps; the first step is sent when the caller commits."""
    workflow = get_workflow(kind)
    with transaction.atomic():
        operation = Operation.objects.create(
            organization=organization,
            kind=kind,
            target_type=target._meta.model_name or "",
            target_id=str(target.pk),
            params=params or {},
            created_by=actor.user,
            next_delivery_at=timezone.now(),
        )
        OperationStep.objects.bulk_create(
            OperationStep(operation=operation, position=i, name=step.name)
            for i, step in enumerate(workflow.steps)
        )
        representation.store(operation)
        audit.record(
            actor=actor,
            organization=organization,
            action=f"operation.{kind}.started",
            target=operation,
            data={"target": f"{operation.target_type}:{operation.target_id}"},
        )
        transaction.on_commit(lambda: send_advance(operation.id))
    return operation


def send_advance(operation_id: str, countdown: float | None = None) -> None:
    """Publish the next delivery. With the broker unreachable the operation is already durable
    in PostgreSQL with its due time, so the caller is not failed: resume_stalled_operations
    sends it once the broker is back."""
    try:
        if countdown:
            advance_operation.apply_async((operation_id,), countdown=countdown)
        else:
            advance_operation.apply_async((operation_id,))
    except BrokerUnreachable as exc:
        logger.warning(
            "broker unreachable, %s will be resumed by the stalled-operation sweep: %s",
            operation_id,
            exc,
        )


def retry_operation(*, actor: Actor, operation: Operation) -> Operation:
    """Resume a failed operation from the step that failed."""
    with transaction.atomic():
        locked = Operation.objects.select_for_update().get(pk=operation.pk)
        if locked.status != OperationStatus.FAILED:
            raise Conflict(f"Only a failed operation can be retried; this one is {locked.status}.")
        locked.steps.filter(status=StepStatus.FAILED).update(
            status=StepStatus.PENDING, attempts=0, errors=0, finished_at=None
        )
        locked.status = OperationStatus.QUEUED
        locked.error_code = ""
        locked.error_message = ""
        locked.finished_at = None
        locked.lease_until = None
        locked.next_delivery_at = timezone.now()
        locked.save()
        representation.store(locked)
        audit.record(
            actor=actor,
            organization=locked.organization,
            action=f"operation.{locked.kind}.retried",
            target=locked,
        )
        transaction.on_commit(lambda: send_advance(locked.id))
    return locked


def step_attempts(operation: Operation, step: str) -> int:
    """How many times ``step`` of ``operation`` has run so far (0 before its first run): the
    poll count of a waiting step, which gives up after a bounded number of polls."""
    attempts = (
        OperationStep.objects.filter(operation_id=operation.pk, name=step)
        .values_list("attempts", flat=True)
        .first()
    )
    return attempts or 0


def record_resource(operation: Operation, key: str, value: Any) -> None:
    """Persist a resource id at once (its own commit), so a crash after AWS answered adopts it."""
    with transaction.atomic():
        locked = Operation.objects.select_for_update().get(pk=operation.pk)
        locked.resources = {**locked.resources, key: value}
        locked.save(update_fields=["resources"])
    operation.resources = locked.resources


# --- what every resource's workflows and create paths share -----------------------------------


def start_resource_operation(
    *,
    actor: Actor,
    resource: Any,
    kind: str,
    action: str,
    status: str | None = None,
    params: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Operation:
    """Start ``kind`` on an :class:`~controlplane.core.models.OperatedResource` inside the
    caller's transaction: the resource takes ``status`` (if given) and the operation as its
    latest, and the audit log records ``action`` with the operation's id."""
    if status is not None:
        resource.status = status
    operation = start_operation(
        actor=actor, organization=resource.organization, kind=kind, target=resource, params=params
    )
    resource.operation = operation
    resource.save()
    audit.record(
        actor=actor,
        organization=resource.organization,
        action=action,
        target=resource,
        data={**(data or {}), "operation": operation.id},
    )
    return operation


def target_loader(model: type[M], *related: str) -> Callable[[Operation], M]:
    """A step's way to its operation's target row, fresh each call, with ``related`` joined."""

    def load(operation: Operation) -> M:
        return model._default_manager.select_related(*related).get(pk=operation.target_id)

    return load


def settle_target(
    model: type[models.Model],
    status: str,
    *,
    deleted: bool = False,
    then: Callable[[Any], object] | None = None,
) -> Callable[[Operation], None]:
    """An ``on_succeeded``/``on_failed`` hook: the target takes ``status`` (and ``deleted_at``
    when ``deleted``), then ``then(target)`` runs — unless a later operation on the target
    superseded this one (a delete cancels an update), which leaves the target to that one."""

    def hook(operation: Operation) -> None:
        target: Any = model._default_manager.select_for_update().get(pk=operation.target_id)
        if target.operation_id != operation.id:
            return
        target.status = status
        if deleted:
            target.deleted_at = timezone.now()
        target.save(update_fields=["status", "deleted_at"])
        if then is not None:
            then(target)

    return hook


def register_resource_workflows(
    model: type[models.Model],
    kinds: Iterable[tuple[str, Sequence[Step], str]],
    *,
    failed: str,
    then: Callable[[Any], object] | None = None,
) -> None:
    """Register a resource's workflows, one per ``(kind, steps, status once done)``: success
    settles the target at that status (``deleted`` also stamps ``deleted_at``), failure at
    ``failed``; ``then(target)`` runs after either (see :func:`settle_target`)."""
    for kind, steps, done in kinds:
        register_workflow(
            Workflow(
                kind=kind,
                steps=steps,
                on_succeeded=settle_target(model, done, deleted=done == "deleted", then=then),
                on_failed=settle_target(model, failed, then=then),
            )
        )


def record_on(model: type[models.Model], pk: Any, key: str, value: Any) -> None:
    """Persist one resource id in the ``resources`` of a row at once, in its own commit (a
    crash right after adopts it); ``None`` forgets the key."""
    with transaction.atomic():
        row: Any = model._default_manager.select_for_update().get(pk=pk)
        resources = dict(row.resources)
        if value is None:
            resources.pop(key, None)
        else:
            resources[key] = value
        row.resources = resources
        row.save(update_fields=["resources"])


# --- the engine behind advance_operation ------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    operation: Operation
    step: OperationStep
    workflow: Workflow


@dataclass(frozen=True)
class Outcome:
    """What the task should do next: nothing, advance again, or come back after a delay."""

    next_countdown: float | None = None
    done: bool = False


def claim_next_step(operation_id: str) -> Claim | Outcome:
    now = timezone.now()
    with transaction.atomic():
        operation = Operation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.is_terminal:
            return Outcome(done=True)  # deleted or finished: a duplicate delivery, nothing to do
        if operation.lease_until is not None and operation.lease_until > now:
            # Another worker holds this operation; look again when its lease runs out.
            return Outcome(next_countdown=(operation.lease_until - now).total_seconds() + 0.1)
        workflow = get_workflow(operation.kind)
        step = (
            operation.steps.exclude(status__in=[StepStatus.SUCCEEDED, StepStatus.SKIPPED])
            .order_by("position")
            .first()
        )
        if step is None:
            _finish(operation, OperationStatus.SUCCEEDED, workflow)
            return Outcome(done=True)
        if operation.lease_until is not None:
            # The lease ran out without a settle: the worker running this step died.
            step.errors += 1
            if step.errors >= settings.LAKEPLANE_STEP_MAX_ATTEMPTS:
                message = (
                    f"{step.name} did not finish in {step.attempts} attempts: "
                    "the worker running it stopped each time"
                )
                step.status = StepStatus.FAILED
                step.detail = message
                step.finished_at = now
                step.save(update_fields=["status", "detail", "errors", "finished_at"])
                operation.error_code, operation.error_message = "worker_lost", message
                _finish(operation, OperationStatus.FAILED, workflow)
                return Outcome(done=True)
        operation.status = OperationStatus.RUNNING
        operation.started_at = operation.started_at or now
        operation.attempts += 1
        operation.lease_until = now + timedelta(seconds=settings.LAKEPLANE_OPERATION_LEASE_SECONDS)
        operation.save(update_fields=["status", "started_at", "attempts", "lease_until"])
        step.status = StepStatus.RUNNING
        step.started_at = step.started_at or now
        step.attempts += 1
        step.save(update_fields=["status", "started_at", "attempts", "errors"])
        representation.store(operation)
    return Claim(operation=operation, step=step, workflow=workflow)


def run_claimed_step(claim: Claim) -> Outcome:
    step_def = claim.workflow.steps[claim.step.position]
    try:
        detail = step_def.run(claim.operation)
    except RetryLater as wait:
        return _settle(claim, StepStatus.RUNNING, wait.detail, countdown=wait.delay)
    except PermanentError as error:
        return _settle(claim, StepStatus.FAILED, error.message, error=(error.code, error.message))
    except Exception as exc:
        logger.exception("step %s of %s raised", claim.step.name, claim.operation.id)
        errors = claim.step.errors + 1
        if errors >= settings.LAKEPLANE_STEP_MAX_ATTEMPTS:
            message = f"{claim.step.name} failed after {claim.step.attempts} attempts: {exc}"
            return _settle(
                claim,
                StepStatus.FAILED,
                message,
                errors=errors,
                error=("internal_error", message),
            )
        # 2, 4, 8, 16 s...: rides out a blip without hammering a struggling API.
        backoff = min(60.0, 2.0**errors)
        return _settle(
            claim,
            StepStatus.RUNNING,
            f"retrying after error: {exc}",
            errors=errors,
            countdown=backoff,
        )
    return _settle(claim, StepStatus.SUCCEEDED, detail or "")


def _settle(
    claim: Claim,
    step_status: StepStatus,
    detail: str,
    *,
    errors: int = 0,
    countdown: float | None = None,
    error: tuple[str, str] | None = None,
) -> Outcome:
    """Record a step's outcome; ``errors`` is its failures in a row (0 after a success/poll)."""
    now = timezone.now()
    with transaction.atomic():
        operation = Operation.objects.select_for_update().filter(pk=claim.operation.pk).first()
        if operation is None or operation.attempts != claim.operation.attempts:
            # Our lease ran out and another claim took the operation over (or it was deleted):
            # that worker now owns the step and its message chain, so this answer is dropped.
            logger.warning(
                "step %s of %s settled after losing its lease; outcome dropped",
                claim.step.name,
                claim.operation.id,
            )
            return Outcome(done=True)
        step = operation.steps.get(pk=claim.step.pk)
        step.status = step_status
        step.detail = detail[:2000]
        step.errors = errors
        if step_status in (StepStatus.SUCCEEDED, StepStatus.FAILED):
            step.finished_at = now
        step.save(update_fields=["status", "detail", "errors", "finished_at"])
        operation.lease_until = None
        operation.next_delivery_at = now + timedelta(seconds=countdown or 0)
        total = operation.steps.count()
        done = operation.steps.filter(status__in=[StepStatus.SUCCEEDED, StepStatus.SKIPPED]).count()
        operation.progress = int(100 * done / total) if total else 100
        operation.save(update_fields=["lease_until", "next_delivery_at", "progress"])
        if error is not None:
            operation.error_code, operation.error_message = error
            _finish(operation, OperationStatus.FAILED, claim.workflow)
            return Outcome(done=True)
        representation.store(operation)
    if step_status == StepStatus.SUCCEEDED:
        return Outcome(next_countdown=0)
    return Outcome(next_countdown=countdown)


def _finish(operation: Operation, status: OperationStatus, workflow: Workflow) -> None:
    """Inside the caller's transaction, with the row locked: runs once per operation."""
    operation.status = status
    operation.finished_at = timezone.now()
    operation.lease_until = None
    operation.next_delivery_at = None
    if status == OperationStatus.SUCCEEDED:
        operation.progress = 100
    operation.save()
    hook = workflow.on_succeeded if status == OperationStatus.SUCCEEDED else workflow.on_failed
    if hook is not None:
        hook(operation)
    audit.record(
        actor=Actor.system_actor("celery"),
        organization=operation.organization,
        action=f"operation.{operation.kind}.{status}",
        target=operation,
        data={"error": operation.error_code} if operation.error_code else {},
    )
    # Last, after the hook: the stored JSON must show everything this transaction wrote.
    representation.store(operation)


def resume_stalled_operations(now: datetime | None = None) -> list[str]:
    """Send ``advance_operation`` again for every unfinished operation whose message is lost.

    The message chain of an operation can break where no retry reaches: a web process killed
    between the commit and the send, the broker down at that moment, a whole worker killed
    with its unacknowledged (or countdown) message, which Redis gives back only after the
    visibility timeout (an hour). Two signs, each older than LAKEPLANE_STALLED_OPERATION_SECONDS:

    - a lease that ran out that long ago: the worker running the step died and nobody
      took the step over (the next claim counts it as a lost worker, so a step that keeps
      killing workers still fails);
    - no lease and a message that was due that long ago.

    A message sent for an operation that was merely slow is harmless: the claim's lease and
    fencing let one delivery run the step; the others return or poll. Returns the ids resumed.
    """
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.LAKEPLANE_STALLED_OPERATION_SECONDS)
    unfinished = Operation.objects.filter(
        status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING]
    )
    stalled = unfinished.filter(
        models.Q(lease_until__lt=overdue)
        | models.Q(lease_until__isnull=True, next_delivery_at__lt=overdue)
    )
    resumed: list[str] = []
    for operation_id in stalled.values_list("id", flat=True)[: settings.LAKEPLANE_STALLED_BATCH]:
        with transaction.atomic():
            # Only if still stalled now that we hold the row: a worker may have just claimed it.
            row = stalled.select_for_update(skip_locked=True).filter(pk=operation_id).first()
            if row is None:
                continue
            row.next_delivery_at = now
            row.save(update_fields=["next_delivery_at"])
            transaction.on_commit(partial(send_advance, row.id))
        resumed.append(operation_id)
    if resumed:
        logger.warning("resumed %d stalled operations: %s", len(resumed), ", ".join(resumed))
    return resumed


# --- the delivery ------------------------------------------------------------------------------
# Defined here, next to the engine it drives and sends (``send_advance``); ``core/tasks.py``
# names it for Celery's autodiscovery. The name stays where the routes and queues expect it.
#
# Step errors are handled inside the engine; what can escape is the engine's own bookkeeping
# failing (database restarting, failover). Celery would ack that message and the operation
# would wait forever for a delivery that never comes, so it is retried instead, with backoff
# capped at a minute and no limit: the operation row, not the message, decides when to stop.
@shared_task(
    name="controlplane.core.tasks.advance_operation",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=None,
)
def advance_operation(operation_id: str) -> None:
    """Run at most one step of the operation, then schedule the next delivery."""
    claimed = claim_next_step(operation_id)
    outcome = claimed if isinstance(claimed, Outcome) else run_claimed_step(claimed)
    if not outcome.done and outcome.next_countdown is not None:
        # A new message rather than a sleep: a waiting workflow holds no worker.
        send_advance(operation_id, countdown=outcome.next_countdown or None)
