"""What the agent last reported about each cluster, stored on the Cluster rows.

The agent API fires ``status_reported`` once per new status report (never for a replay or a
report older than the stored one). A cluster the report does not list is ``absent`` — the agent
has removed it, or never rendered it — which the delete workflow waits for.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.clusters.models import Cluster

ABSENT = "absent"
OBSERVED_FIELDS = [
    "observed_version",
    "observed_phase",
    "coordinator_ready",
    "workers_ready",
    "observed_at",
]


def on_status_reported(
    sender: Any, *, compute_plane_id: str, report: contract.StatusReport, **kwargs: Any
) -> None:
    applied = report.applied_version or 0
    statuses = {status.id: status for status in report.clusters}
    live = Cluster.objects.filter(compute_plane_id=compute_plane_id, deleted_at__isnull=True)
    unlisted = live.exclude(pk__in=statuses)
    absent = {
        "observed_version": applied,
        "observed_phase": ABSENT,
        "coordinator_ready": False,
        "workers_ready": 0,
        "observed_at": report.sent_at,
    }
    if not statuses:
        # The usual report of a plane without clusters (or with all of them gone): one
        # statement, no transaction of its own.
        unlisted.update(**absent)
        return
    with transaction.atomic():
        # One read and one bulk UPDATE however many clusters the report lists (was an UPDATE
        # per cluster: 55 queries for a report of 50).
        reported = list(live.filter(pk__in=statuses).only("id"))
        for cluster in reported:
            status = statuses[cluster.id]
            cluster.observed_version = applied
            cluster.observed_phase = status.phase
            cluster.coordinator_ready = status.coordinator_ready
            cluster.workers_ready = status.workers_ready
            cluster.observed_at = status.observed_at
        if reported:
            Cluster.objects.bulk_update(reported, OBSERVED_FIELDS)
        unlisted.update(**absent)
