"""Monthly statements and usage reports, computed from the daily rollups only.

A statement covers one calendar month in the organization's time zone. Its lines are one per
cluster x instance type x node role x purchase option x price-book version (a price change in the
middle of the month splits a line in two). Charges are applied in this order, stated on every
statement: list price (or the organization's contract price, which replaces it) -> line amounts
rounded to the cent -> percentage discount on the subtotal -> credits, never below zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from controlplane.billing.models import BillingProfile, Credit, UsageDay, UsageMinute
from controlplane.billing.prices import (
    Book,
    aws_estimate_note,
    aws_hourly_estimate,
    book_on,
    books,
    compute_units,
    round_cents,
)
from controlplane.billing.rollups import local_day_bounds

ROUNDING_NOTE = (
    "Amounts are exact until each line is rounded to a whole cent (half to even); the discount "
    "applies to the subtotal of rounded lines, then credits, never below zero."
)
ESTIMATE_NOTE = (
    "Estimated node-hours are periods no agent report covered, billed at the last known size of "
    "the cluster."
)
FOUR = Decimal("0.0001")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(text)
        value = cls(int(year), int(month))
        if not 1 <= value.month <= 12 or value.year < 2000:
            raise ValueError(text)
        return value

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def profile_of(organization: Any) -> BillingProfile:
    profile, _ = BillingProfile.objects.get_or_create(organization=organization)
    return profile


@dataclass
class Line:
    cluster_id: str
    compute_plane_id: str
    instance_type: str
    role: str
    purchase_option: str
    price_book: str
    unit_price_cents: Decimal
    node_seconds: int = 0
    estimated_seconds: int = 0

    @property
    def node_hours(self) -> Decimal:
        return Decimal(self.node_seconds) / 3600

    @property
    def compute_unit_hours(self) -> Decimal:
        return self.node_hours * compute_units(self.instance_type)

    @property
    def exact_cents(self) -> Decimal:
        return self.compute_unit_hours * self.unit_price_cents

    @property
    def amount_cents(self) -> int:
        return round_cents(self.exact_cents)

    @property
    def aws_estimate_cents(self) -> int | None:
        hourly = aws_hourly_estimate(self.instance_type, self.purchase_option)
        return None if hourly is None else round_cents(self.node_hours * hourly)


@dataclass
class Statement:
    organization: Any
    month: Month
    time_zone: str
    start: datetime
    end: datetime
    currency: str
    lines: list[Line]
    cluster_names: dict[str, str]
    discount_percent: Decimal
    credits: list[Credit]
    as_of: datetime
    final: bool
    subtotal_cents: int = 0
    discount_cents: int = 0
    credits_cents: int = 0
    total_cents: int = 0
    forecast_total_cents: int | None = None
    aws_estimate_cents: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def _unit_price(book: Book | None, profile: BillingProfile, instance: str, role: str) -> Decimal:
    if profile.contract_cents_per_unit_hour is not None:
        return Decimal(profile.contract_cents_per_unit_hour)
    return book.unit_price(instance, role) if book is not None else Decimal(0)


LINE_FIELDS = ("cluster_ref", "compute_plane_ref", "instance_type", "role", "purchase_option")


def statement(
    organization: Any, month: Month, *, now: datetime | None = None, from_raw: bool = False
) -> Statement:
    """The month's statement from the daily rollups. ``from_raw`` sums the raw minutes per local
    day instead — the same answer the slow way, for bench/billing.py and tests to compare."""
    now = now or timezone.now()
    profile = profile_of(organization)
    zone = ZoneInfo(profile.time_zone)
    start, _ = local_day_bounds(month.first, zone)
    end, _ = local_day_bounds(month.next.first, zone)
    all_books = books()
    lines: dict[tuple[str, ...], Line] = {}
    rows: Any
    if from_raw:
        summed = (
            UsageMinute.objects.filter(
                organization_ref=organization.pk, minute__gte=start, minute__lt=end
            )
            .annotate(local_day=TruncDate("minute", tzinfo=zone))
            .values(*LINE_FIELDS, "local_day")
            .annotate(seconds=Sum("node_seconds"), estimated=Sum("estimated_seconds"))
            .order_by()
        )
        rows = (
            {
                **{name: r[name] for name in LINE_FIELDS},
                "day": r["local_day"],
                "node_seconds": r["seconds"],
                "estimated_seconds": r["estimated"],
            }
            for r in summed
        )
    else:
        rows = UsageDay.objects.filter(
            organization_ref=organization.pk, day__gte=month.first, day__lt=month.next.first
        ).values(*LINE_FIELDS, "day", "node_seconds", "estimated_seconds")
    for row in rows:
        book = book_on(row["day"], all_books)
        key = (
            row["cluster_ref"],
            row["instance_type"],
            row["role"],
            row["purchase_option"],
            book.version if book else "",
        )
        line = lines.get(key)
        if line is None:
            line = lines[key] = Line(
                cluster_id=row["cluster_ref"],
                compute_plane_id=row["compute_plane_ref"],
                instance_type=row["instance_type"],
                role=row["role"],
                purchase_option=row["purchase_option"],
                price_book=key[-1],
                unit_price_cents=_unit_price(book, profile, row["instance_type"], row["role"]),
            )
        line.node_seconds += row["node_seconds"]
        line.estimated_seconds += row["estimated_seconds"]
    ordered = sorted(
        lines.values(),
        key=lambda ln: (
            ln.cluster_id,
            ln.instance_type,
            ln.role,
            ln.purchase_option,
            ln.price_book,
        ),
    )
    credits = list(
        Credit.objects.filter(organization=organization, month=month.first).order_by("created_at")
    )
    result = Statement(
        organization=organization,
        month=month,
        time_zone=profile.time_zone,
        start=start,
        end=end,
        currency=all_books[-1].currency if all_books else "USD",
        lines=ordered,
        cluster_names=_cluster_names({ln.cluster_id for ln in ordered}),
        discount_percent=Decimal(profile.discount_percent),
        credits=credits,
        as_of=now,
        final=now >= end,
        notes={"rounding": ROUNDING_NOTE, "estimated": ESTIMATE_NOTE, "aws": aws_estimate_note()},
    )
    _total(result)
    return result


def _total(s: Statement) -> None:
    s.subtotal_cents = sum(line.amount_cents for line in s.lines)
    s.discount_cents = round_cents(Decimal(s.subtotal_cents) * s.discount_percent / 100)
    remaining = s.subtotal_cents - s.discount_cents
    s.credits_cents = min(remaining, sum(c.amount_cents for c in s.credits))
    s.total_cents = remaining - s.credits_cents
    s.aws_estimate_cents = sum(line.aws_estimate_cents or 0 for line in s.lines)
    if not s.final and s.as_of > s.start:
        # Month-to-date: the subtotal so far, run on linearly to the month's end.
        elapsed = Decimal((s.as_of - s.start).total_seconds())
        whole = Decimal((s.end - s.start).total_seconds())
        projected = round_cents(Decimal(s.subtotal_cents) * whole / elapsed)
        discount = round_cents(Decimal(projected) * s.discount_percent / 100)
        credit = min(projected - discount, sum(c.amount_cents for c in s.credits))
        s.forecast_total_cents = projected - discount - credit


def _cluster_names(ids: set[str]) -> dict[str, str]:
    """Names of what a line is for: a cluster, a cache, a managed metastore, or (for the
    gateway, billed per plane) the compute plane's gateway."""
    from controlplane.caching.models import Cache
    from controlplane.catalogs.models import Metastore
    from controlplane.clusters.models import Cluster
    from controlplane.computeplanes.models import ComputePlane

    names: dict[str, str] = {}
    for model, prefix in ((Cluster, "cl_"), (Cache, "cache_"), (Metastore, "ms_")):
        wanted = {i for i in ids if i.startswith(prefix)}
        if wanted:
            names.update(model.objects.filter(id__in=wanted).values_list("id", "name"))
    planes = {i for i in ids if i.startswith("cp_")}
    if planes:
        for pk, name in ComputePlane.objects.filter(id__in=planes).values_list("id", "name"):
            names[pk] = f"{name} gateway"
    return names


def months_with_usage(organization: Any, *, now: datetime | None = None) -> list[Month]:
    now = now or timezone.now()
    first = (
        UsageDay.objects.filter(organization_ref=organization.pk)
        .order_by("day")
        .values_list("day", flat=True)
        .first()
    )
    zone = ZoneInfo(profile_of(organization).time_zone)
    current = Month.of(now.astimezone(zone).date())
    if first is None:
        return [current]
    months, month = [], Month.of(first)
    while (month.year, month.month) <= (current.year, current.month):
        months.append(month)
        month = month.next
    return list(reversed(months))


# --- usage reports ----------------------------------------------------------------------------
GROUPS = ("day", "cluster", "instance_type")


def usage(
    organization: Any, start: date, end: date, group_by: str, *, with_amounts: bool
) -> dict[str, Any]:
    """Node-hours (and, for those who may read money, amounts before discounts and credits)
    for the local days ``[start, end)``, grouped by day, cluster or instance type."""
    profile = profile_of(organization)
    all_books = books()
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"node_seconds": Decimal(0), "unit_hours": Decimal(0), "cents": Decimal(0)}
    )
    for row in UsageDay.objects.filter(
        organization_ref=organization.pk, day__gte=start, day__lt=end
    ).values("day", "cluster_ref", "instance_type", "role", "node_seconds"):
        key = {
            "day": row["day"].isoformat(),
            "cluster": row["cluster_ref"],
            "instance_type": row["instance_type"],
        }[group_by]
        hours = Decimal(row["node_seconds"]) / 3600
        unit_hours = hours * compute_units(row["instance_type"])
        price = _unit_price(
            book_on(row["day"], all_books), profile, row["instance_type"], row["role"]
        )
        acc = totals[key]
        acc["node_seconds"] += row["node_seconds"]
        acc["unit_hours"] += unit_hours
        acc["cents"] += unit_hours * price
    rows: list[dict[str, Any]] = []
    names = _cluster_names(set(totals)) if group_by == "cluster" else {}
    for key in sorted(totals):
        acc = totals[key]
        out: dict[str, Any] = {"key": key}
        if group_by == "cluster":
            out["name"] = names.get(key, key)
        out |= {
            "node_hours": str((acc["node_seconds"] / 3600).quantize(FOUR)),
            "compute_units": str(acc["unit_hours"].quantize(FOUR)),
        }
        if with_amounts:
            out["amount"] = round_cents(acc["cents"])
        rows.append(out)
    total: dict[str, Any] = {
        "node_hours": str(
            (sum((a["node_seconds"] for a in totals.values()), Decimal(0)) / 3600).quantize(FOUR)
        ),
        "compute_units": str(
            sum((a["unit_hours"] for a in totals.values()), Decimal(0)).quantize(FOUR)
        ),
    }
    if with_amounts:
        total["amount"] = sum(r["amount"] for r in rows)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": group_by,
        "time_zone": profile.time_zone,
        "currency": all_books[-1].currency if all_books else "USD",
        "rows": rows,
        "totals": total,
    }


def daily_lines(organization: Any, month: Month) -> list[dict[str, Any]]:
    """One row per day x cluster x instance type x role x purchase option, for the CSV."""
    profile = profile_of(organization)
    all_books = books()
    rows = list(
        UsageDay.objects.filter(
            organization_ref=organization.pk, day__gte=month.first, day__lt=month.next.first
        )
        .order_by("day", "cluster_ref", "instance_type", "role", "purchase_option")
        .values(
            "day",
            "cluster_ref",
            "compute_plane_ref",
            "instance_type",
            "role",
            "purchase_option",
            "node_seconds",
            "estimated_seconds",
        )
    )
    names = _cluster_names({r["cluster_ref"] for r in rows})
    out = []
    for r in rows:
        book = book_on(r["day"], all_books)
        price = _unit_price(book, profile, r["instance_type"], r["role"])
        hours = Decimal(r["node_seconds"]) / 3600
        unit_hours = hours * compute_units(r["instance_type"])
        out.append(
            {
                "date": r["day"].isoformat(),
                "cluster_id": r["cluster_ref"],
                "cluster_name": names.get(r["cluster_ref"], ""),
                "compute_plane_id": r["compute_plane_ref"],
                "instance_type": r["instance_type"],
                "role": r["role"],
                "purchase_option": r["purchase_option"],
                "node_hours": str(hours.quantize(FOUR)),
                "estimated_node_hours": str(
                    (Decimal(r["estimated_seconds"]) / 3600).quantize(FOUR)
                ),
                "compute_unit_hours": str(unit_hours.quantize(FOUR)),
                "price_book": book.version if book else "",
                "unit_price_cents": str(price),
                "amount_cents_exact": str((unit_hours * price).quantize(FOUR)),
            }
        )
    return out


def day_range_ok(start: date, end: date) -> bool:
    return start < end <= start + timedelta(days=366)
