"""What the agent last reported about each managed metastore, stored on the Metastore rows.

The agent API fires ``status_reported`` once per new status report. A report that lists no
metastore costs no query: most compute planes run none, and reports come every few seconds.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.catalogs.models import Metastore


def on_status_reported(
    sender: Any, *, compute_plane_id: str, report: contract.StatusReport, **kwargs: Any
) -> None:
    if not report.metastores:
        return
    with transaction.atomic():
        # Scoped to the reporting plane: an agent can only speak for its own metastores.
        live = Metastore.objects.filter(compute_plane_id=compute_plane_id, deleted_at__isnull=True)
        for status in report.metastores:
            live.filter(pk=status.id).update(
                observed_phase=status.phase,
                schema_ready=status.schema_ready,
                observed_at=status.observed_at,
            )
