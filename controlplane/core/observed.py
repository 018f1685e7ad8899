"""Writing what agents report onto the rows of compute-plane-scoped objects.

``status_reported`` carries a batch of reports; a listener turns the batch into one mapping
and hands it here, which writes it in one transaction of a constant number of statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Model


def write_observed(
    model: type[Model], observed: Mapping[tuple[str, str], Mapping[str, Any]]
) -> None:
    """Set fields of live rows of ``model`` (a ``compute_plane`` and a ``deleted_at``), keyed
    by (compute plane id, row id), every entry with the same field names.

    An entry whose row belongs to another compute plane changes nothing: an agent speaks for
    its own plane only. Nothing to write costs no query; otherwise one transaction of a
    locking read (in id order, so concurrent batches queue rather than deadlock) and one bulk
    UPDATE, however many rows and planes.
    """
    if not observed:
        return
    fields = list(next(iter(observed.values())))
    manager = model._default_manager
    with transaction.atomic():
        found = (
            manager.select_for_update()
            .filter(
                compute_plane_id__in={plane for plane, _ in observed},
                pk__in={pk for _, pk in observed},
                deleted_at__isnull=True,
            )
            .order_by("pk")
            .values_list("pk", "compute_plane_id")
        )
        # Only the pk and the written fields are needed for bulk_update, so no row is loaded.
        rows = [
            model(pk=pk, **observed[plane, pk]) for pk, plane in found if (plane, pk) in observed
        ]
        if rows:
            manager.bulk_update(rows, fields)
