"""What the agent last reported about each managed metastore, stored on the Metastore rows.

The agent API sends ``status_reported`` with a batch of new status reports. A batch that lists
no metastore costs no query: most compute planes run none, and reports come every few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from computeplane_agent import contract
from controlplane.catalogs.models import Metastore
from controlplane.core.observed import write_observed


def on_status_reported(
    sender: Any, *, reports: Sequence[tuple[str, contract.StatusReport]], **kwargs: Any
) -> None:
    write_observed(
        Metastore,
        {
            (compute_plane_id, status.id): {
                "observed_phase": status.phase,
                "schema_ready": status.schema_ready,
                "observed_at": status.observed_at,
            }
            for compute_plane_id, report in reports
            for status in report.metastores
        },
    )
