"""Billing's listeners on other apps' signals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.billing.models import ReportedPeriod


def on_usage_reported(
    sender: Any, *, compute_plane_id: str, period_start: datetime, period_end: datetime, **_: Any
) -> None:
    """Keep the period an applied usage report covered (a replay is not announced)."""
    ReportedPeriod.objects.create(
        compute_plane_ref=compute_plane_id, period_start=period_start, period_end=period_end
    )
