"""Statements: a hand-computed month, its CSV and PDF, and who may read money."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from controlplane.billing import documents, rollups
from controlplane.billing.documents import CSV_HEADER
from controlplane.billing.models import (
    BillingProfile,
    Credit,
    Price,
    PriceBook,
    UsageHour,
    UsageMinute,
)
from controlplane.billing.statements import Month, statement
from controlplane.core.roles import Role
from tests.factories import ClusterFactory, OrganizationFactory

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def hours(cluster, itype, role, option, nodes, first: datetime, count: int, seconds=3600):
    for i in range(count):
        UsageHour.objects.create(
            organization_ref=cluster.organization_id,
            compute_plane_ref=cluster.compute_plane_id,
            cluster_ref=cluster.id,
            instance_type=itype,
            purchase_option=option,
            role=role,
            hour=first + timedelta(hours=i),
            node_seconds=nodes * seconds,
        )


@pytest.fixture
def november(db):
    """New York, November 2026: DST ends on Nov 1 (a 25-hour day); prices change on the 16th."""
    org = OrganizationFactory(name="Acme Analytics")
    BillingProfile.objects.create(
        organization=org, time_zone="America/New_York", discount_percent=Decimal("10")
    )
    book = PriceBook.objects.create(version="2026-11b", effective_from="2026-11-16")
    Price.objects.create(book=book, role="worker", cents_per_unit_hour=Decimal("6"))
    Price.objects.create(book=book, role="coordinator", cents_per_unit_hour=Decimal("6"))
    a = ClusterFactory(
        organization=org,
        coordinator_instance_type="m5.xlarge",
        worker_instance_type="r5.2xlarge",
        spot=True,
    )
    b = ClusterFactory(
        organization=org, compute_plane=a.compute_plane, worker_instance_type="m5.xlarge"
    )
    # Nov 1 local = 04:00 UTC Nov 1 .. 05:00 UTC Nov 2: 25 hours of coordinator (1 unit, 5c).
    hours(a, "m5.xlarge", "coordinator", "on_demand", 1, datetime(2026, 11, 1, 4, tzinfo=UTC), 25)
    # Spot workers, 2 x r5.2xlarge (2 units each): 10 h on the 10th (5c), 10 h on the 20th (6c).
    hours(a, "r5.2xlarge", "worker", "spot", 2, datetime(2026, 11, 10, 5, tzinfo=UTC), 10)
    hours(a, "r5.2xlarge", "worker", "spot", 2, datetime(2026, 11, 20, 5, tzinfo=UTC), 10)
    # On-demand m5.xlarge workers on the 20th: 3 node-hours and 1234 s (6c): 20.0566c -> 20c.
    hours(b, "m5.xlarge", "worker", "on_demand", 3, datetime(2026, 11, 20, 15, tzinfo=UTC), 1)
    hours(
        b,
        "m5.xlarge",
        "worker",
        "on_demand",
        1,
        datetime(2026, 11, 20, 16, tzinfo=UTC),
        1,
        seconds=1234,
    )
    # Outside the local month: 23:00 Oct 31 and 00:00 Dec 1 in New York.
    hours(b, "m5.xlarge", "worker", "on_demand", 5, datetime(2026, 11, 1, 3, tzinfo=UTC), 1)
    hours(b, "m5.xlarge", "worker", "on_demand", 5, datetime(2026, 12, 1, 5, tzinfo=UTC), 1)
    Credit.objects.create(organization=org, month="2026-11-01", amount_cents=100, reason="SLA")
    rollups.rebuild_days(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    return org, a, b


def test_a_month_adds_up_by_hand(november):
    org, a, b = november
    s = statement(org, Month(2026, 11), now=NOW)
    amounts = {(ln.cluster_id, ln.role, ln.price_book): ln.amount_cents for ln in s.lines}
    assert amounts == {
        (a.id, "coordinator", "2026-01"): 125,  # 25 h x 1 unit x 5c: the DST day has 25 hours
        (a.id, "worker", "2026-01"): 200,  # 20 node-h x 2 units x 5c
        (a.id, "worker", "2026-11b"): 240,  # after the price change: x 6c
        (b.id, "worker", "2026-11b"): 20,  # 3.3428 unit-h x 6c = 20.0566c, rounded once
    }
    assert s.subtotal_cents == 585
    assert s.discount_cents == 58  # 10 % of 585 = 58.5, half to even
    assert s.credits_cents == 100
    assert s.total_cents == 427
    assert s.final
    assert s.forecast_total_cents is None
    assert s.aws_estimate_cents > 0
    spot = next(ln for ln in s.lines if ln.purchase_option == "spot")
    on_demand_twin = Decimal("0.504") * 100 * spot.node_hours
    assert spot.aws_estimate_cents < on_demand_twin  # spot is estimated below on-demand


def test_month_to_date_forecasts_the_end(november):
    org, *_ = november
    s = statement(org, Month(2026, 11), now=datetime(2026, 11, 16, 5, tzinfo=UTC))
    assert not s.final
    assert s.forecast_total_cents is not None
    assert s.forecast_total_cents > s.total_cents


def test_csv_opens_in_pythons_csv_with_the_documented_header(november, make_caller):
    org, a, _b = november
    owner = make_caller(org, Role.OWNER)
    response = owner.client.get(f"/api/v1/orgs/{org.slug}/billing/statements/2026-11.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == CSV_HEADER
    assert {r["date"] for r in rows} == {"2026-11-01", "2026-11-10", "2026-11-20"}
    assert sum(Decimal(r["node_hours"]) for r in rows if r["cluster_id"] == a.id) == 65
    same = owner.client.get(
        f"/api/v1/orgs/{org.slug}/billing/statements/2026-11", HTTP_ACCEPT="text/csv"
    )
    assert same.content == response.content


def test_pdf_is_a_real_document_with_the_totals(november, make_caller):
    org, a, _b = november
    for i in range(85):  # 85 more lines: 89 in all, three pages of 36
        hours(
            a,
            f"m5.{['large', 'xlarge', '2xlarge', '4xlarge', '8xlarge'][i % 5]}",
            "worker",
            "on_demand",
            1,
            datetime(2026, 11, 25, tzinfo=UTC) + timedelta(hours=i),
            1,
        )
        UsageHour.objects.filter(
            role="worker", hour=datetime(2026, 11, 25, tzinfo=UTC) + timedelta(hours=i)
        ).update(cluster_ref=f"cl_x{i:03d}")
    rollups.rebuild_days(datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    owner = make_caller(org, Role.OWNER)
    response = owner.client.get(f"/api/v1/orgs/{org.slug}/billing/statements/2026-11.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 3
    text = "\n".join(page.extract_text() for page in reader.pages)
    total = statement(org, Month(2026, 11), now=NOW).total_cents
    assert "Acme Analytics" in text
    assert f"{total // 100:,}.{total % 100:02d} USD" in text


def test_json_statement_and_list(november, make_caller):
    org, *_ = november
    admin = make_caller(org, Role.ADMIN)
    body = admin.client.get(f"/api/v1/orgs/{org.slug}/billing/statements/2026-11").json()
    assert body["total_cents"] == 427
    assert body["time_zone"] == "America/New_York"
    assert len(body["lines"]) == 4
    months = admin.client.get(f"/api/v1/orgs/{org.slug}/billing/statements").json()["results"]
    assert "2026-11" in [m["month"] for m in months]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_see_node_hours_but_no_money(november, make_caller, role):
    org, *_ = november
    caller = make_caller(org, role)
    base = f"/api/v1/orgs/{org.slug}/billing"
    assert caller.client.get(f"{base}/statements/2026-11").status_code == 403
    assert caller.client.get(f"{base}/statements/2026-11.pdf").status_code == 403
    assert caller.client.get(f"{base}/statements").status_code == 403
    usage = caller.client.get(f"{base}/usage?start=2026-11-01&end=2026-12-01&group_by=cluster")
    assert usage.status_code == 200
    body = usage.json()
    assert body["rows"]
    assert all("amount" not in row for row in body["rows"])
    assert "amount" not in body["totals"]


def test_usage_for_admins_carries_amounts_and_bad_input_is_422(november, make_caller):
    org, *_ = november
    admin = make_caller(org, Role.ADMIN)
    base = f"/api/v1/orgs/{org.slug}/billing/usage"
    ok = admin.client.get(f"{base}?start=2026-11-01&end=2026-12-01&group_by=day").json()
    assert ok["totals"]["amount"] == sum(r["amount"] for r in ok["rows"])
    bad = admin.client.get(f"{base}?start=2026-13-01&end=yesterday&group_by=week")
    assert bad.status_code == 422
    assert bad["Content-Type"] == "application/problem+json"
    assert set(bad.json()["errors"]) == {"start", "end", "group_by"}
    assert (
        admin.client.get(f"/api/v1/orgs/{org.slug}/billing/statements/2026-13").status_code == 422
    )


def test_settings_budget_and_time_zone_need_the_owner(november, make_caller):
    org, *_ = november
    base = f"/api/v1/orgs/{org.slug}/billing/settings"
    admin, owner = make_caller(org, Role.ADMIN), make_caller(org, Role.OWNER)
    assert admin.client.patch(base, {"monthly_budget_cents": 500}, format="json").status_code == 403
    bad = owner.client.patch(base, {"time_zone": "Mars/Olympus"}, format="json")
    assert bad.status_code == 400
    assert "time_zone" in bad.json()["errors"]
    ok = owner.client.patch(
        base, {"monthly_budget_cents": 500, "time_zone": "Europe/Berlin"}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["monthly_budget_cents"] == 500
    assert admin.client.get(base).json()["time_zone"] == "Europe/Berlin"


def test_price_book_is_public_to_signed_in_users(make_caller, db):
    caller = make_caller(OrganizationFactory(), Role.VIEWER)
    body = caller.client.get("/api/v1/price-book").json()
    assert body["books"][0]["version"] == "2026-01"
    m5 = next(t for t in body["instance_types"] if t["instance_type"] == "m5.xlarge")
    assert m5["compute_units"] == "1"


def test_statement_from_raw_minutes_equals_the_one_from_rollups(db):
    """bench/billing.py times both; they must be the same answer, across the DST change and the
    local month's edges (minutes just before and after midnight in New York)."""
    org = OrganizationFactory()
    BillingProfile.objects.create(organization=org, time_zone="America/New_York")
    spans = [  # (first minute UTC, count, role, nodes)
        (datetime(2026, 11, 1, 3, 50, tzinfo=UTC), 20, "coordinator", 1),  # 23:50 Oct 31 local
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), 90, "worker", 3),  # inside the 25-hour day
        (datetime(2026, 11, 18, 4, 58, tzinfo=UTC), 4, "worker", 2),  # across local midnight
        (datetime(2026, 12, 1, 4, 55, tzinfo=UTC), 10, "worker", 5),  # across the month's end
    ]
    for first, count, role, nodes in spans:
        UsageMinute.objects.bulk_create(
            UsageMinute(
                organization_ref=org.pk,
                compute_plane_ref="cp_x",
                cluster_ref="cl_x",
                instance_type="m5.xlarge",
                purchase_option="on_demand",
                role=role,
                minute=first + timedelta(minutes=i),
                node_seconds=nodes * 60,
                estimated_seconds=60 if i % 7 == 0 else 0,
            )
            for i in range(count)
        )
    rollups.rebuild_hours(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    rollups.rebuild_days(datetime(2026, 10, 31, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    fast = documents.as_json(statement(org, Month(2026, 11), now=NOW))
    slow = documents.as_json(statement(org, Month(2026, 11), now=NOW, from_raw=True))
    assert fast == slow
    assert len(fast["lines"]) == 2
    seconds = sum(ln.node_seconds for ln in statement(org, Month(2026, 11), now=NOW).lines)
    # 10 of the 20 coordinator minutes, all 90 worker minutes, the 4 across midnight, and the 5
    # before midnight on Nov 30 (05:00 UTC in EST).
    assert seconds == 10 * 60 + 90 * 180 + 4 * 120 + 5 * 300


@pytest.mark.django_db
def test_caches_metastores_and_the_gateway_are_lines_at_their_role_price():
    from computeplane_agent.install import SYSTEM_INSTANCE_TYPE
    from tests.factories import CacheFactory, MetastoreFactory

    org = OrganizationFactory()
    cluster = ClusterFactory(organization=org)
    plane = cluster.compute_plane
    cache = CacheFactory(organization=org, compute_plane=plane, name="warm")
    metastore = MetastoreFactory(organization=org, compute_plane=plane, kind="managed", name="hms")
    first = datetime(2026, 11, 10, tzinfo=UTC)
    for ref, itype, role in (
        (cache.id, "r5.2xlarge", "cache"),
        (metastore.id, SYSTEM_INSTANCE_TYPE, "metastore"),
        (plane.id, SYSTEM_INSTANCE_TYPE, "gateway"),
    ):
        for i in range(10):
            UsageHour.objects.create(
                organization_ref=org.pk,
                compute_plane_ref=plane.pk,
                cluster_ref=ref,
                instance_type=itype,
                purchase_option="on_demand",
                role=role,
                hour=first + timedelta(hours=i),
                node_seconds=2 * 3600,
            )
    rollups.rebuild_days(first, first + timedelta(days=1))

    s = statement(org, Month(2026, 11), now=NOW)

    lines = {ln.role: ln for ln in s.lines}
    # The launch price book: caching workers 2.5c per unit-hour (r5.2xlarge = 2 units);
    # metastore and gateway replicas are included (0c) but listed, with the AWS estimate.
    assert lines["cache"].amount_cents == 100  # 20 node-h x 2 units x 2.5c
    assert lines["metastore"].amount_cents == 0
    assert lines["gateway"].amount_cents == 0
    assert all(ln.aws_estimate_cents > 0 for ln in s.lines)
    assert s.cluster_names[cache.id] == "warm"
    assert s.cluster_names[metastore.id] == "hms"
    assert s.cluster_names[plane.id] == f"{plane.name} gateway"
    rows = list(csv.DictReader(io.StringIO(documents.as_csv(org, Month(2026, 11)))))
    assert {(r["role"], r["cluster_name"]) for r in rows} == {
        ("cache", "warm"),
        ("metastore", "hms"),
        ("gateway", f"{plane.name} gateway"),
    }
