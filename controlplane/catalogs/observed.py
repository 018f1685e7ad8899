"""Which version of each catalog is live on each cluster, from the agent's status reports.

Listens to ``status_reported`` (a batch of new reports). A batch's entries are written in one
transaction: one locking read and one bulk update however many planes it holds; a batch without
catalog statuses costs no query at all (the common report of a plane without catalogs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from computeplane_agent import contract
from controlplane.catalogs.models import CatalogAttachment


def on_status_reported(
    sender: Any, *, reports: Sequence[tuple[str, contract.StatusReport]], **kwargs: Any
) -> None:
    # Keyed by the reporting plane too: an agent speaks only for its own clusters.
    observed = {
        (compute_plane_id, status.id, cluster.id): (status, cluster.observed_at)
        for compute_plane_id, report in reports
        for cluster in report.clusters
        for status in cluster.catalogs
    }
    if not observed:
        return
    with transaction.atomic():
        rows = list(
            CatalogAttachment.objects.select_for_update(of=("self",))
            .select_related("cluster")
            .filter(
                cluster__compute_plane_id__in={plane for plane, _, _ in observed},
                cluster_id__in={cluster for _, _, cluster in observed},
                catalog_id__in={catalog for _, catalog, _ in observed},
            )
            .order_by("id")
        )
        changed = []
        for row in rows:
            entry = observed.get((row.cluster.compute_plane_id, row.catalog_id, row.cluster_id))
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
