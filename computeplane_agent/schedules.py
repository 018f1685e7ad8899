"""Schedule windows: a cron-like floor under a cluster's worker count.

A window names weekdays and a local time range (``start`` inclusive, ``end`` exclusive,
``HH:MM``, ``24:00`` for midnight at the end) in the organisation's time zone; while one is in
force the cluster has at least its ``min_count`` workers (the largest, where windows overlap).
Pure: the caller passes the time, so windows across a daylight-saving change are table tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from computeplane_agent.contract import WEEKDAYS, ScheduleWindow


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def schedule_floor(windows: Sequence[ScheduleWindow], at: datetime, time_zone: str) -> int:
    """The least worker count the windows ask for at ``at`` (an aware datetime)."""
    local = at.astimezone(ZoneInfo(time_zone))
    day = WEEKDAYS[local.weekday()]
    now = local.hour * 60 + local.minute
    return max(
        (
            w.min_count
            for w in windows
            if day in w.days and minutes(w.start) <= now < minutes(w.end)
        ),
        default=0,
    )
