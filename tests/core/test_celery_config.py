"""The Celery app really carries the reliability settings the engine relies on."""

from __future__ import annotations

from django.db import DatabaseError

from controlplane.celery import app
from controlplane.core.tasks import advance_operation


def test_messages_are_acked_after_the_task_and_requeued_when_the_worker_dies() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    # One message in hand per process: a killed worker strands at most the one it was running.
    assert app.conf.worker_prefetch_multiplier == 1
    # The task itself says so too, so no later settings change can quietly drop it.
    assert advance_operation.acks_late is True
    assert advance_operation.reject_on_worker_lost is True


def test_only_json_goes_over_the_wire() -> None:
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]
    assert advance_operation.serializer == "json"


def test_advance_operation_is_routed_to_the_provisioning_queue() -> None:
    route = app.amqp.router.route({}, advance_operation.name, args=("op_x",), kwargs={})
    assert route["queue"].name == "provisioning"
    billing = app.amqp.router.route({}, "controlplane.billing.tasks.rollup", args=(), kwargs={})
    assert billing["queue"].name == "billing"
    other = app.amqp.router.route({}, "controlplane.tenancy.tasks.anything", args=(), kwargs={})
    assert other["queue"].name == "default"


def test_every_queue_is_declared_so_a_worker_without_q_consumes_it() -> None:
    declared = {queue.name for queue in app.conf.task_queues}
    assert declared == {"provisioning", "default", "billing"}
    assert app.conf.task_default_queue == "default"


def test_engine_bookkeeping_errors_are_retried_not_dropped() -> None:
    assert getattr(advance_operation, "autoretry_for", None) == (DatabaseError,)
    assert advance_operation.max_retries is None
    assert advance_operation.ignore_result is True
