"""Billing at size: statements from rollups vs raw rows, the hourly rollup, marketplace metering.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/billing.py \
        [--rows 5000000] [--orgs 1000] [--months 6] [--runs 50]

What it does, in one run, on its own PostgreSQL database (default ``lakeplane_billing_bench``,
created if missing, migrated, and its usage tables emptied first):

1. creates ``--orgs`` organizations (New York time) and writes ``--rows`` raw usage minutes over
   the ``--months`` calendar months before this one with one ``INSERT … SELECT generate_series``
   per shape. One organization ("the customer") runs a cluster without a break — a coordinator
   and a spot worker pool every minute of every month, the statement one reads; the other
   organizations share the remaining rows as one-hour runs spread over the period;
2. builds the hourly and daily rollups for the whole period with the real rebuild functions;
3. times the customer's statement for the last full month as JSON (``statement`` +
   ``documents.as_json`` + ``json.dumps``) ``--runs`` times from the daily rollups and the same
   number of times from the raw minutes (``statement(from_raw=True)``), checks both give the
   same document, and prints p50/p99 and the ratio (goal: p99 <= 150 ms and >= 10x);
4. writes one dense hour (every organization, two series, 60 minutes) and times the hourly
   rollup pass for that hour (``rebuild_hours`` + ``rebuild_days``: the step the beat task runs
   after the facts), then
5. starts the emulator in-process, links every organization to a marketplace customer, and
   times ``metering.prepare`` + ``metering.send`` for that hour: records/s and BatchMeterUsage
   calls, counted by the sender and by the emulator's call log (goal: ceil(orgs / 25)).

Exit status 1 when a goal is NOT met (the line says which).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from computeplanes import OUT_DIR, bench_env, ensure_database, manage  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/lakeplane_billing_bench"
GOAL_P99_MS = 150.0
GOAL_RATIO = 10.0
PRODUCT = "lakeplane-bench"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if args.orgs < 2 or args.months < 1:
        parser.error("--orgs must be at least 2 and --months at least 1")

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    env = bench_env(database_url, "memory://", "http://127.0.0.1:1")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ensure_database(database_url)
    manage(env, "migrate", "--noinput")

    from controlplane.sandbox.server import SandboxCloud

    cloud = SandboxCloud(port=0).start()
    try:
        env["AWS_ENDPOINT_URL"] = cloud.endpoint_url
        os.environ.update(env)
        return run(args, cloud.endpoint_url)
    finally:
        cloud.stop()


def run(args: argparse.Namespace, endpoint: str) -> int:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from controlplane.billing import documents, metering, rollups
    from controlplane.billing.models import (
        BillingProfile,
        MeteringRecord,
        UsageDay,
        UsageHour,
        UsageMinute,
    )
    from controlplane.billing.statements import Month, statement
    from controlplane.cloudaccounts.aws import reset_aws_clients
    from controlplane.sandbox.control import SandboxControl
    from controlplane.tenancy.models import Organization

    now = timezone.now()
    first = month_start(now.date(), args.months)
    period_start = datetime(first.year, first.month, 1, tzinfo=UTC)
    this_month = month_start(now.date(), 0)
    period_end = datetime(this_month.year, this_month.month, 1, tzinfo=UTC)
    minutes = int((period_end - period_start).total_seconds() // 60)

    t0 = time.perf_counter()
    MeteringRecord.objects.all().delete()
    for model in (UsageMinute, UsageHour, UsageDay):
        model.objects.all().delete()
    BillingProfile.objects.all().delete()
    Organization.objects.filter(slug__startswith="bb-").delete()
    orgs = Organization.objects.bulk_create(
        [Organization(slug=f"bb-{i:05d}", name=f"Bench org {i}") for i in range(args.orgs)]
    )
    BillingProfile.objects.bulk_create(
        [BillingProfile(organization=o, time_zone="America/New_York") for o in orgs]
    )
    customer = orgs[0]
    table = UsageMinute._meta.db_table
    cols = (
        "organization_ref, compute_plane_ref, cluster_ref, instance_type, purchase_option, role,"
        " minute, node_seconds, estimated_seconds"
    )
    # The customer: a coordinator and a spot worker pool, every minute up to the period's end
    # (at most half the rows).
    steady = min(minutes, args.rows // 4)
    with connection.cursor() as cur:
        for itype, option, role, nodes in (
            ("m5.xlarge", "on_demand", "coordinator", 1),
            ("r6i.2xlarge", "spot", "worker", 4),
        ):
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT %s, 'cp_bench', 'cl_bench_main', %s, %s, %s,"  # noqa: S608
                " %s + make_interval(mins => m), %s, 0 FROM generate_series(0, %s - 1) AS m",
                [
                    customer.pk,
                    itype,
                    option,
                    role,
                    period_end - timedelta(minutes=steady),
                    nodes * 60,
                    steady,
                ],
            )
        # Everyone else: one-hour runs (60 worker minutes) spread evenly over the period.
        rest = max(0, args.rows - 2 * steady)
        others = [o.pk for o in orgs[1:]]
        per_org_hours = max(1, rest // 60 // len(others))
        stride = max(1, minutes // 60 // per_org_hours)
        cur.execute(
            f"INSERT INTO {table} ({cols})"  # noqa: S608
            " SELECT o.ref, 'cp_' || o.n, 'cl_' || o.n, 'm6i.xlarge', 'on_demand', 'worker',"
            "  %s + make_interval(hours => ((h * %s + o.n) %% (%s / 60))::int, mins => m), 120, 0"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS o(ref, n),"
            "  generate_series(0, %s - 1) AS h, generate_series(0, 59) AS m"
            " ON CONFLICT DO NOTHING",
            [period_start, stride, minutes, others, per_org_hours],
        )
        cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        raw_rows = cur.fetchone()[0]
        cur.execute(f"ANALYZE {table}")
    generated = time.perf_counter() - t0

    t0 = time.perf_counter()
    at = period_start
    while at < period_end:  # a month of hours at a time, as a re-run for a past window would
        step = min(at + timedelta(days=31), period_end)
        rollups.rebuild_hours(at, step)
        at = step
    rollups.rebuild_days(period_start, period_end)
    with connection.cursor() as cur:
        for model in (UsageHour, UsageDay):
            cur.execute(f"ANALYZE {model._meta.db_table}")
    rolled = time.perf_counter() - t0
    hours_rows, days_rows = UsageHour.objects.count(), UsageDay.objects.count()

    last_month = month_start(now.date(), 1)
    month = Month(last_month.year, last_month.month)

    def render(from_raw: bool) -> str:
        return json.dumps(documents.as_json(statement(customer, month, from_raw=from_raw)))

    fast_doc, slow_doc = render(False), render(True)
    assert json.loads(fast_doc)["lines"], "the customer's statement has no lines"
    same = _comparable(fast_doc) == _comparable(slow_doc)
    fast, slow = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        render(False)
        fast.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        render(True)
        slow.append((time.perf_counter() - t) * 1000)

    # One dense hour: every organization, a coordinator and workers, 60 minutes each.
    hour = rollups.floor_hour(now - metering.SETTLE) - rollups.HOUR
    UsageMinute.objects.filter(minute__gte=hour, minute__lt=hour + rollups.HOUR).delete()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({cols})"  # noqa: S608
            " SELECT o.ref, 'cp_' || o.n, 'cl_' || o.n, s.itype, 'on_demand', s.role,"
            "  %s + make_interval(mins => m), s.secs, 0"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS o(ref, n),"
            "  (VALUES ('m5.xlarge', 'coordinator', 60), ('m5.2xlarge', 'worker', 180))"
            "   AS s(itype, role, secs), generate_series(0, 59) AS m",
            [hour, [o.pk for o in orgs]],
        )
    t = time.perf_counter()
    hour_rows = rollups.rebuild_hours(hour, hour + rollups.HOUR)
    day_rows = rollups.rebuild_days(hour, hour + rollups.HOUR)
    rollup_hour_s = time.perf_counter() - t

    control = SandboxControl(endpoint)
    control.reset()
    reset_aws_clients()
    for i, org in enumerate(orgs):
        control.register_marketplace_customer(
            token=f"tok-bench-{i}", customer=f"cust-bench-{i}", product=PRODUCT
        )
        BillingProfile.objects.filter(organization=org).update(
            marketplace_customer=f"cust-bench-{i}", marketplace_product=PRODUCT
        )
    t = time.perf_counter()
    prepared = metering.prepare(now)
    counts = metering.send(now)
    meter_s = time.perf_counter() - t
    emulator_calls = sum(1 for c in control.calls() if c.action == "BatchMeterUsage")
    accepted = MeteringRecord.objects.filter(hour=hour, status="accepted").count()
    goal_calls = math.ceil(prepared / metering.BATCH)

    p50, p99 = statistics.median(fast), pct(fast, 0.99)
    raw50, raw99 = statistics.median(slow), pct(slow, 0.99)
    ratio = raw50 / p50 if p50 else float("inf")
    print(f"raw usage rows           {raw_rows:,} over {args.orgs:,} orgs, {args.months} months")
    print(f"generated in             {generated:.1f} s; rollups built in {rolled:.1f} s")
    print(f"rollup rows              {hours_rows:,} hourly, {days_rows:,} daily")
    print(f"statement {month} JSON    {len(json.loads(fast_doc)['lines'])} lines, runs={args.runs}")
    print(f"  from rollups           p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    print(f"  from raw rows          p50 {raw50:.1f} ms  p99 {raw99:.1f} ms")
    print(f"  raw / rollups (p50)    {ratio:.1f}x; same document: {same}")
    print(
        f"hourly rollup, 1 hour    {rollup_hour_s * 1000:.0f} ms for {args.orgs:,} orgs"
        f" ({hour_rows:,} hour rows, {day_rows:,} day rows rebuilt)"
    )
    print(
        f"metering {prepared:,} org-hours  {meter_s:.2f} s = {prepared / meter_s:,.0f} records/s;"
        f" calls {counts['calls']} (emulator saw {emulator_calls}), ceil(n/25) = {goal_calls};"
        f" accepted {accepted:,}"
    )
    results = {
        "at": datetime.now(UTC).isoformat(),
        "rows": raw_rows,
        "orgs": args.orgs,
        "months": args.months,
        "statement_ms": {"p50": p50, "p99": p99, "raw_p50": raw50, "raw_p99": raw99},
        "ratio": ratio,
        "rollup_hour_ms": rollup_hour_s * 1000,
        "metering": {
            "records": prepared,
            "seconds": meter_s,
            "calls": counts["calls"],
            "emulator_calls": emulator_calls,
        },
    }
    (OUT_DIR / f"billing-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(
        json.dumps(results, indent=2)
    )

    assert same, "the statement from raw rows differs from the one from rollups"
    assert accepted == prepared == args.orgs, (accepted, prepared)
    assert counts["calls"] == emulator_calls
    missed = []
    if p99 > GOAL_P99_MS:
        missed.append(f"p99 {p99:.1f} ms > {GOAL_P99_MS:.0f} ms")
    if ratio < GOAL_RATIO:
        missed.append(f"ratio {ratio:.1f}x < {GOAL_RATIO:.0f}x")
    if counts["calls"] != goal_calls:
        missed.append(f"calls {counts['calls']} != ceil(n/25) = {goal_calls}")
    if missed:
        print("goal NOT met: " + "; ".join(missed))
        return 1
    print("goal met: statement p99 <= 150 ms and >= 10x raw; calls = ceil(n/25)")
    return 0


def _comparable(doc: str) -> Any:
    """The statement minus the instant it was computed at."""
    data = json.loads(doc)
    data.pop("as_of", None)
    return data


if __name__ == "__main__":
    sys.exit(main())
