"""Schedule windows as a floor: weekdays, [start, end) in the organisation's time zone, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from computeplane_agent.contract import ScheduleWindow
from computeplane_agent.schedules import schedule_floor

OFFICE = ScheduleWindow(days=["mon", "tue", "wed", "thu", "fri"], start="08:00", end="18:00",
                        min_count=4)  # fmt: skip
NIGHTLY = ScheduleWindow(days=["wed"], start="17:00", end="24:00", min_count=6)


@pytest.mark.parametrize(
    ("at", "zone", "floor"),
    [
        (datetime(2026, 12, 7, 9, 0, tzinfo=UTC), "UTC", 4),  # Monday 09:00
        (datetime(2026, 12, 7, 7, 59, tzinfo=UTC), "UTC", 0),  # before the start
        (datetime(2026, 12, 7, 18, 0, tzinfo=UTC), "UTC", 0),  # the end is exclusive
        (datetime(2026, 12, 5, 12, 0, tzinfo=UTC), "UTC", 0),  # Saturday
        (datetime(2026, 12, 9, 17, 30, tzinfo=UTC), "UTC", 6),  # overlap: the larger floor
        (datetime(2026, 12, 9, 23, 59, tzinfo=UTC), "UTC", 6),  # up to midnight
        # 07:30 UTC on a Monday is 08:30 in Berlin (CET, UTC+1): in the window there.
        (datetime(2026, 12, 7, 7, 30, tzinfo=UTC), "Europe/Berlin", 4),
        # New York, the Monday after DST ends (2026-11-01): 08:00 EST is 13:00 UTC.
        (datetime(2026, 11, 2, 12, 59, tzinfo=UTC), "America/New_York", 0),
        (datetime(2026, 11, 2, 13, 0, tzinfo=UTC), "America/New_York", 4),
        # ...and the Monday before it, on EDT: 08:00 is 12:00 UTC.
        (datetime(2026, 10, 26, 12, 0, tzinfo=UTC), "America/New_York", 4),
    ],
)
def test_the_floor_in_force(at, zone, floor):
    assert schedule_floor([OFFICE, NIGHTLY], at, zone) == floor


def test_no_windows_no_floor():
    assert schedule_floor([], datetime(2026, 12, 7, 9, tzinfo=UTC), "UTC") == 0


@pytest.mark.parametrize(
    "window",
    [
        {"days": ["mon"], "start": "18:00", "end": "08:00", "min_count": 1},
        {"days": [], "start": "08:00", "end": "18:00", "min_count": 1},
        {"days": ["monday"], "start": "08:00", "end": "18:00", "min_count": 1},
        {"days": ["mon"], "start": "8:00", "end": "18:00", "min_count": 1},
        {"days": ["mon"], "start": "08:00", "end": "24:01", "min_count": 1},
    ],
)
def test_a_bad_window_is_refused_by_the_contract(window):
    with pytest.raises(pydantic.ValidationError):
        ScheduleWindow.model_validate(window)
