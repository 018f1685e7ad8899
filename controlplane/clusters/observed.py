"""What the agent last reported about each cluster, stored on the Cluster rows.

The agent API sends ``status_reported`` with a batch of new status reports, each compute plane's
newest (never a replay or a report older than the stored one). A cluster a report does not list
is ``absent`` — the agent has removed it, or never rendered it — which the delete workflow waits
for. A batch costs one statement on PostgreSQL however many planes and clusters it holds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

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

# The whole batch in ONE statement, atomic on its own (no transaction around it). ``batch`` has
# a row per compute plane and ``listed`` a row per reported cluster, unnested from array
# parameters, so the text is the same for any batch. Every live cluster of a batch's plane
# takes its status from its own plane's report (an id listed under another plane matches
# nothing: an agent speaks for its own clusters only) or becomes ``absent``. The rows are
# locked in id order first, so concurrent batches over the same clusters queue rather than
# deadlock.
OBSERVED_UPDATE = """
WITH batch AS (
    SELECT * FROM unnest(%(planes)s::text[], %(versions)s::integer[], %(sent_at)s::timestamptz[])
        AS b(compute_plane_id, observed_version, sent_at)
), listed AS (
    SELECT * FROM unnest(
        %(listed_planes)s::text[], %(listed_ids)s::text[], %(phases)s::text[],
        %(coordinators)s::boolean[], %(workers)s::integer[], %(observed_at)s::timestamptz[]
    ) AS l(compute_plane_id, id, phase, coordinator_ready, workers_ready, observed_at)
), target AS MATERIALIZED (
    SELECT c.id, b.observed_version,
        COALESCE(l.phase, %(absent)s) AS observed_phase,
        COALESCE(l.coordinator_ready, false) AS coordinator_ready,
        COALESCE(l.workers_ready, 0) AS workers_ready,
        COALESCE(l.observed_at, b.sent_at) AS observed_at
    FROM {cluster} c
    JOIN batch b ON b.compute_plane_id = c.compute_plane_id
    LEFT JOIN listed l ON l.id = c.id AND l.compute_plane_id = c.compute_plane_id
    WHERE c.deleted_at IS NULL
    ORDER BY c.id
    FOR UPDATE OF c
)
UPDATE {cluster} AS c
SET observed_version = t.observed_version, observed_phase = t.observed_phase,
    coordinator_ready = t.coordinator_ready, workers_ready = t.workers_ready,
    observed_at = t.observed_at
FROM target t
WHERE c.id = t.id
"""


@functools.cache
def _observed_sql() -> str:
    # Formatted once per process: the table name never changes.
    return OBSERVED_UPDATE.format(cluster=Cluster._meta.db_table)


def on_status_reported(
    sender: Any, *, reports: Sequence[tuple[str, contract.StatusReport]], **kwargs: Any
) -> None:
    if not reports:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_observed_sql(), _batch_params(reports))
        return
    with transaction.atomic():
        for compute_plane_id, report in reports:
            _apply_report(compute_plane_id, report)


def _statuses(report: contract.StatusReport) -> dict[str, contract.ClusterStatus]:
    # A cluster listed twice in one report takes its last status.
    return {status.id: status for status in report.clusters}


def _batch_params(reports: Sequence[tuple[str, contract.StatusReport]]) -> dict[str, Any]:
    """The statement's array parameters: one plane once (the signal promises it; a repeated
    plane keeps its last report, so that no cluster matches twice)."""
    batch = dict(reports)
    params: dict[str, Any] = {
        "planes": list(batch),
        "versions": [report.applied_version or 0 for report in batch.values()],
        "sent_at": [report.sent_at for report in batch.values()],
        "absent": ABSENT,
    }
    columns: dict[str, list[Any]] = {
        "listed_planes": [],
        "listed_ids": [],
        "phases": [],
        "coordinators": [],
        "workers": [],
        "observed_at": [],
    }
    for compute_plane_id, report in batch.items():
        for status in _statuses(report).values():
            columns["listed_planes"].append(compute_plane_id)
            columns["listed_ids"].append(status.id)
            columns["phases"].append(status.phase)
            columns["coordinators"].append(status.coordinator_ready)
            columns["workers"].append(status.workers_ready)
            columns["observed_at"].append(status.observed_at)
    return params | columns


def _apply_report(compute_plane_id: str, report: contract.StatusReport) -> None:
    """One report through the ORM (the path of databases other than PostgreSQL): one read and
    one bulk UPDATE however many clusters the report lists, and one UPDATE of the rest."""
    applied = report.applied_version or 0
    statuses = _statuses(report)
    live = Cluster.objects.filter(compute_plane_id=compute_plane_id, deleted_at__isnull=True)
    reported = list(live.filter(pk__in=statuses).only("id")) if statuses else []
    for cluster in reported:
        status = statuses[cluster.id]
        cluster.observed_version = applied
        cluster.observed_phase = status.phase
        cluster.coordinator_ready = status.coordinator_ready
        cluster.workers_ready = status.workers_ready
        cluster.observed_at = status.observed_at
    if reported:
        Cluster.objects.bulk_update(reported, OBSERVED_FIELDS)
    live.exclude(pk__in=statuses).update(
        observed_version=applied,
        observed_phase=ABSENT,
        coordinator_ready=False,
        workers_ready=0,
        observed_at=report.sent_at,
    )
