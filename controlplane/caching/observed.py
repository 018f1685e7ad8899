"""What the agent last reported about each cache, stored on the Cache rows (counts only).

The agent API fires ``status_reported`` once per new status report. A report that lists no
cache costs no query; each listed cache is one UPDATE (a plane has a handful of caches). A
cache the report leaves out is not touched here: the delete workflow reads the plane's stored
report to see that the agent removed it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.caching.models import Cache


def on_status_reported(
    sender: Any, *, compute_plane_id: str, report: contract.StatusReport, **kwargs: Any
) -> None:
    if not report.caches:
        return
    applied = report.applied_version or 0
    with transaction.atomic():
        live = Cache.objects.filter(compute_plane_id=compute_plane_id, deleted_at__isnull=True)
        for status in report.caches:
            live.filter(pk=status.id).update(
                observed_version=applied,
                observed_phase=status.phase,
                master_ready=status.master_ready,
                workers_ready=status.workers_ready,
                bytes_used=status.bytes_used,
                bytes_capacity=status.bytes_capacity,
                hit_ratio=status.hit_ratio,
                observed_at=status.observed_at,
            )
