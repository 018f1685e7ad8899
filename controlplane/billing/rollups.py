"""Hourly and daily rollups of the usage facts, rebuilt (never patched) for any window.

Hours are UTC hours. Days are calendar days in each organization's time zone, built from the
hours whose start falls on that local day; a statement reads days only, so a month never scans
minutes or hours. (A time zone with a half-hour offset attributes each UTC hour to the local day
its start falls on.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from controlplane.billing.models import (
    BillingProfile,
    ReportedPeriod,
    RollupCursor,
    UsageDay,
    UsageHour,
    UsageMinute,
)
from controlplane.billing.usage import floor_minute, rebuild_minutes

HOUR = timedelta(hours=1)
SERIES = (
    "organization_ref",
    "compute_plane_ref",
    "cluster_ref",
    "instance_type",
    "purchase_option",
    "role",
)


def floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: datetime) -> datetime:
    floored = floor_hour(at)
    return floored if floored == at else floored + HOUR


def rebuild_hours(start: datetime, end: datetime) -> int:
    """Replace the hourly rollups of ``[start, end)`` (hour-aligned) from the minutes."""
    grouped = (
        UsageMinute.objects.filter(minute__gte=start, minute__lt=end)
        .annotate(bucket=TruncHour("minute"))
        .values(*SERIES, "bucket")
        .annotate(total=Sum("node_seconds"), estimated=Sum("estimated_seconds"))
        .order_by()
    )
    rows = [
        UsageHour(
            **{name: row[name] for name in SERIES},
            hour=row["bucket"],
            node_seconds=row["total"],
            estimated_seconds=row["estimated"],
        )
        for row in grouped
    ]
    with transaction.atomic():
        UsageHour.objects.filter(hour__gte=start, hour__lt=end).delete()
        UsageHour.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def org_zones(org_ids: set[str] | None = None) -> dict[str, ZoneInfo]:
    profiles = BillingProfile.objects.all()
    if org_ids is not None:
        profiles = profiles.filter(organization_id__in=org_ids)
    return {
        org: ZoneInfo(zone) for org, zone in profiles.values_list("organization_id", "time_zone")
    }


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1)  # wall-clock arithmetic: 23 or 25 hours across DST
    end = datetime(end.year, end.month, end.day, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def rebuild_days(start: datetime, end: datetime) -> int:
    """Replace the daily rollups of every local day that overlaps ``[start, end)`` in its
    organization's time zone, from the hours of those whole days."""
    wide_start, wide_end = start - timedelta(days=1), end + timedelta(days=1)
    org_ids = set(
        UsageHour.objects.filter(hour__gte=wide_start, hour__lt=wide_end)
        .values_list("organization_ref", flat=True)
        .distinct()
    ) | set(
        UsageDay.objects.filter(day__gte=wide_start.date(), day__lte=wide_end.date())
        .values_list("organization_ref", flat=True)
        .distinct()
    )
    zones = org_zones(org_ids)
    utc = ZoneInfo("UTC")
    written = 0
    for org in sorted(org_ids):
        zone = zones.get(org, utc)
        first, last = (
            start.astimezone(zone).date(),
            (end - timedelta(microseconds=1)).astimezone(zone).date(),
        )
        span_start, _ = local_day_bounds(first, zone)
        _, span_end = local_day_bounds(last, zone)
        totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for row in UsageHour.objects.filter(
            organization_ref=org, hour__gte=span_start, hour__lt=span_end
        ).values(*SERIES, "hour", "node_seconds", "estimated_seconds"):
            day = row["hour"].astimezone(zone).date()
            acc = totals[(*(row[name] for name in SERIES), day)]
            acc[0] += row["node_seconds"]
            acc[1] += row["estimated_seconds"]
        rows = [
            UsageDay(
                **dict(zip(SERIES, key[:-1], strict=True)),
                day=key[-1],
                node_seconds=total,
                estimated_seconds=estimated,
            )
            for key, (total, estimated) in totals.items()
        ]
        with transaction.atomic():
            UsageDay.objects.filter(organization_ref=org, day__gte=first, day__lte=last).delete()
            UsageDay.objects.bulk_create(rows, batch_size=2000)
        written += len(rows)
    return written


def rebuild(start: datetime, end: datetime) -> dict[str, int]:
    """Recompute facts, hours and days for ``[start, end)``, an hour at a time."""
    start, end = floor_hour(start), floor_minute(end)
    counts = {"minutes": 0, "hours": 0, "days": 0}
    at = start
    while at < end:
        step_end = min(at + HOUR, end)
        counts["minutes"] += rebuild_minutes(at, step_end)
        at = step_end
    counts["hours"] = rebuild_hours(start, ceil_hour(end))
    counts["days"] = rebuild_days(start, ceil_hour(end))
    return counts


def incremental(now: datetime | None = None) -> dict[str, int]:
    """The beat task's pass: rebuild from the earliest instant that may have changed.

    That is the trailing window (late reports arrive within minutes), or earlier when a report
    received since the last pass covers an older period — but never past raw retention.
    """
    now = now or timezone.now()
    end = floor_minute(now)
    trailing = timedelta(minutes=settings.LAKEPLANE_BILLING_REBUILD_TRAILING_MINUTES)
    retention = timedelta(days=settings.LAKEPLANE_BILLING_RAW_RETENTION_DAYS)
    with transaction.atomic():
        cursor, _ = RollupCursor.objects.select_for_update().get_or_create(name="usage")
        if cursor.built_until is None:
            first = _earliest_source()
            start = first if first is not None else end - trailing
        else:
            start = min(cursor.built_until, end) - trailing
            if cursor.last_run_at is not None:
                late = (
                    ReportedPeriod.objects.filter(received_at__gte=cursor.last_run_at)
                    .order_by("period_start")
                    .values_list("period_start", flat=True)
                    .first()
                )
                if late is not None:
                    start = min(start, late)
        start = max(floor_hour(start), floor_hour(now - retention))
        counts = rebuild(start, end)
        cursor.built_until, cursor.last_run_at = end, now
        cursor.save(update_fields=["built_until", "last_run_at"])
    return counts


def _earliest_source() -> datetime | None:
    from controlplane.agentapi.models import UsageRecord
    from controlplane.clusters.models import ClusterEvent

    candidates = [
        ClusterEvent.objects.order_by("at").values_list("at", flat=True).first(),
        UsageRecord.objects.order_by("period_start").values_list("period_start", flat=True).first(),
    ]
    found = [c for c in candidates if c is not None]
    return min(found) if found else None


def prune(now: datetime | None = None) -> int:
    """Drop raw facts and coverage older than the retention, by range."""
    cutoff = floor_hour(
        (now or timezone.now()) - timedelta(days=settings.LAKEPLANE_BILLING_RAW_RETENTION_DAYS)
    )
    deleted, _ = UsageMinute.objects.filter(minute__lt=cutoff).delete()
    ReportedPeriod.objects.filter(period_end__lt=cutoff).delete()
    return deleted
