"""An operation's public JSON, stored on its row so the operations list does not rebuild it.

``GET /operations`` is polled by consoles and CLIs; rebuilding 50 operations and their steps
from the ORM, formatting ~750 timestamps and encoding ~60 KB of JSON per request cost ~13 ms
of web-worker CPU (bench/RESULTS.md). Instead each row carries ``representation``: the exact
bytes JSONRenderer produces for that operation (the same dict as ``OperationSerializer``),
and the list concatenates them.

Kept current in two ways:

* the operation engine (controlplane/core/workflows.py) rewrites it in the transaction of
  every transition, under the row lock, so a polled list normally finds it ready;
* database triggers (migration core.0003) clear it whenever any writer (a queryset
  ``update()``, the admin, raw SQL) changes a column it is built from, on the operation or on
  one of its steps. A cleared row is rebuilt by :func:`page_representations` on the next read.

So a stored value is either absent or current; it is never trusted past a change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from controlplane.core.models import Operation, OperationStep


def build(operations: Sequence[Operation]) -> list[dict[str, Any]]:
    """The public dicts of ``operations``, their steps read in one query.

    Field for field what ``OperationSerializer`` renders for one operation
    (tests/core/test_operation_list.py compares the two through the API).
    """
    # One DRF field with the timezone looked up once: the same formatting as every
    # DateTimeField of the per-object path, without a context-local lookup per value.
    timestamp_field = serializers.DateTimeField(
        default_timezone=timezone.get_current_timezone() if settings.USE_TZ else None
    )

    def timestamp(value: datetime | None) -> str | None:
        return None if value is None else timestamp_field.to_representation(value)

    steps: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        OperationStep.objects.filter(operation_id__in=[op.pk for op in operations])
        .order_by("operation_id", "position")
        .values_list(
            "operation_id", "name", "status", "attempts", "started_at", "finished_at", "detail"
        )
    )
    for operation_id, name, status, attempts, started_at, finished_at, detail in rows:
        steps[operation_id].append(
            {
                "name": name,
                "status": status,
                "attempts": attempts,
                "started_at": timestamp(started_at),
                "finished_at": timestamp(finished_at),
                "detail": detail,
            }
        )
    return [
        {
            "id": op.id,
            "kind": op.kind,
            "target": {"type": op.target_type, "id": op.target_id},
            "status": op.status,
            "progress": op.progress,
            "steps": steps.get(op.id, []),
            "error": (
                {"code": op.error_code, "message": op.error_message} if op.error_code else None
            ),
            "attempts": op.attempts,
            "created_at": timestamp(op.created_at),
            "started_at": timestamp(op.started_at),
            "finished_at": timestamp(op.finished_at),
        }
        for op in operations
    ]


def encode(item: dict[str, Any]) -> str:
    """``item`` as the API's JSONRenderer writes it (compact, UTF-8, U+2028/9 escaped)."""
    return JSONRenderer().render(item).decode()


def store(operation: Operation) -> None:
    """Rewrite ``operation``'s stored representation from the database.

    Call inside the transaction that changed it, with its row locked and after its last
    write, so the stored value is exactly the committed state.
    """
    fresh = Operation.objects.get(pk=operation.pk)
    operation.representation = encode(build([fresh])[0])
    Operation.objects.filter(pk=operation.pk).update(representation=operation.representation)


def page_representations(page: Iterable[Mapping[str, Any]]) -> list[str]:
    """The stored representations of a page, rebuilding (and storing) those that are cleared.

    ``page`` holds ``{"id": …, "representation": …}`` rows (``values()``: no model instances
    on the hot path). Rebuilt rows are stored only when their lock can be taken at once
    (``skip_locked``): holding the lock while reading the steps means a concurrent change
    either finished before the read or clears the value again after this commit, and a list
    request never waits for the engine. Rows someone else holds are rendered for this answer
    only.
    """
    page = list(page)
    missing = [row["id"] for row in page if row["representation"] is None]
    if not missing:
        return [row["representation"] for row in page]
    rebuilt: dict[str, str] = {}
    with transaction.atomic():
        locked = list(
            Operation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=missing)
            .order_by("pk")
        )
        locked_ids = {op.pk for op in locked}
        unlocked = list(Operation.objects.filter(pk__in=set(missing) - locked_ids))
        for item in build([*locked, *unlocked]):
            rebuilt[item["id"]] = encode(item)
        if locked:
            for op in locked:
                op.representation = rebuilt[op.pk]
            Operation.objects.bulk_update(locked, ["representation"])
    return [row["representation"] or rebuilt[row["id"]] for row in page]
