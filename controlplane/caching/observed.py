"""What the agent last reported about each cache, stored on the Cache rows (counts only).

The agent API sends ``status_reported`` with a batch of new status reports. A batch that lists
no cache costs no query; otherwise the listed caches of every plane are written together. A
cache a report leaves out is not touched here: the delete workflow reads the plane's stored
report to see that the agent removed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from computeplane_agent import contract
from controlplane.caching.models import Cache
from controlplane.core.observed import write_observed


def on_status_reported(
    sender: Any, *, reports: Sequence[tuple[str, contract.StatusReport]], **kwargs: Any
) -> None:
    write_observed(
        Cache,
        {
            (compute_plane_id, status.id): {
                "observed_version": report.applied_version or 0,
                "observed_phase": status.phase,
                "master_ready": status.master_ready,
                "workers_ready": status.workers_ready,
                "bytes_used": status.bytes_used,
                "bytes_capacity": status.bytes_capacity,
                "hit_ratio": status.hit_ratio,
                "observed_at": status.observed_at,
            }
            for compute_plane_id, report in reports
            for status in report.caches
        },
    )
