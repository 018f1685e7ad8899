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


def on_status_reported(
    sender: Any, *, compute_plane_id: str, report: contract.StatusReport, **kwargs: Any
) -> None:
    applied = report.applied_version or 0
    with transaction.atomic():
        live = Cluster.objects.filter(compute_plane_id=compute_plane_id, deleted_at__isnull=True)
        for status in report.clusters:
            live.filter(pk=status.id).update(
                observed_version=applied,
                observed_phase=status.phase,
                coordinator_ready=status.coordinator_ready,
                workers_ready=status.workers_ready,
                observed_at=status.observed_at,
            )
        live.exclude(pk__in=[s.id for s in report.clusters]).update(
            observed_version=applied,
            observed_phase=ABSENT,
            coordinator_ready=False,
            workers_ready=0,
            observed_at=report.sent_at,
        )
