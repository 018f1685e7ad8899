"""Which version of each catalog is live on each cluster, from the agent's status reports.

Listens to ``status_reported`` (fired once per new report). Entries are written with one bulk
update per report; a report without catalog statuses costs no query at all (the common
heartbeat-like report of a plane without catalogs).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.catalogs.models import CatalogAttachment


def on_status_reported(
    sender: Any, *, compute_plane_id: str, report: contract.StatusReport, **kwargs: Any
) -> None:
    observed = {
        (status.id, cluster.id): (status, cluster.observed_at)
        for cluster in report.clusters
        for status in cluster.catalogs
    }
    if not observed:
        return
    with transaction.atomic():
        # Only attachments of clusters on the reporting plane: an agent speaks for its own.
        rows = list(
            CatalogAttachment.objects.select_for_update()
            .filter(
                cluster__compute_plane_id=compute_plane_id,
                cluster_id__in={cluster for _, cluster in observed},
                catalog_id__in={catalog for catalog, _ in observed},
            )
            .order_by("id")
        )
        changed = []
        for row in rows:
            entry = observed.get((row.catalog_id, row.cluster_id))
            if entry is None:
                continue
            status, at = entry
            if row.observed_at is not None and at < row.observed_at:
                continue  # an older observation than the stored one
            row.live_version = status.version
            row.status = status.status
            row.message = status.message or ""
            row.observed_at = at
            changed.append(row)
        if changed:
            CatalogAttachment.objects.bulk_update(
                changed, ["live_version", "status", "message", "observed_at"]
            )
