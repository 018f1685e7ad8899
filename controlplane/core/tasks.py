"""Celery entry points of the operation engine. Tasks take ids only."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from controlplane.core import workflows


# Step errors are handled inside the engine; what can escape is the engine's own bookkeeping
# failing (database restarting, failover). Celery would ack that message and the operation
# would wait forever for a delivery that never comes, so it is retried instead, with backoff
# capped at a minute and no limit: the operation row, not the message, decides when to stop.
@shared_task(
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
    claimed = workflows.claim_next_step(operation_id)
    if isinstance(claimed, workflows.Outcome):
        outcome = claimed
    else:
        outcome = workflows.run_claimed_step(claimed)
    if not outcome.done and outcome.next_countdown is not None:
        # A new message rather than a sleep: a waiting workflow holds no worker.
        workflows.send_advance(operation_id, countdown=outcome.next_countdown or None)
