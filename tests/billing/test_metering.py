"""Marketplace metering against the emulator (moto's meteringmarketplace behind the sandbox layer).

Every organization-hour reaches AWS once: across two workers racing on PostgreSQL, across a
worker that dies between the call and the write, through throttling and unprocessed records.
The emulator's record store is the witness: one record per (customer, dimension, hour).
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from controlplane.billing import metering
from controlplane.billing.models import BillingProfile, MeteringRecord, MeteringStatus, UsageHour
from controlplane.billing.rollups import HOUR, floor_hour
from controlplane.cloudaccounts.aws import reset_aws_clients
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.tenancy.models import Organization
from tests.factories import OrganizationFactory

PRODUCT = "lakeplane-payg"


@pytest.fixture
def market(sandbox, settings):
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_MARKETPLACE_BACKOFF_SECONDS = 60.0
    settings.LAKEPLANE_MARKETPLACE_MAX_ATTEMPTS = 4
    reset_aws_clients()
    yield sandbox
    reset_aws_clients()


def now_() -> datetime:
    return floor_hour(timezone.now()) + timedelta(minutes=30)


def linked_org(sandbox, n: int, product: str = PRODUCT, subscribe: bool = True) -> Organization:
    org = OrganizationFactory()
    customer = f"cust-{org.slug}-{n}"
    if subscribe:
        sandbox.control.register_marketplace_customer(
            token=f"tok-{customer}", customer=customer, product=product
        )
    BillingProfile.objects.create(
        organization=org, marketplace_customer=customer, marketplace_product=product
    )
    return org


def usage(org: Organization, now: datetime, hours: int = 4, nodes: int = 3) -> list[datetime]:
    """``nodes`` m5.xlarge (1 compute unit each) for the ``hours`` settled hours before ``now``."""
    last = floor_hour(now - metering.SETTLE) - HOUR
    out = []
    for i in range(hours):
        hour = last - i * HOUR
        UsageHour.objects.create(
            organization_ref=org.pk,
            compute_plane_ref="cp_x",
            cluster_ref=f"cl_{org.slug}",
            instance_type="m5.xlarge",
            purchase_option="on_demand",
            role="worker",
            hour=hour,
            node_seconds=nodes * 3600,
        )
        out.append(hour)
    return out


def batch_calls(sandbox) -> list[Any]:
    return [c for c in sandbox.control.calls() if c.action == "BatchMeterUsage"]


def drain(now: datetime, **kwargs: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    while True:
        counts = metering.send(now, **kwargs)
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
        if not counts["calls"]:
            return total


def emulator_keys(sandbox) -> list[tuple[str, str, str]]:
    return [
        (r["customer"], r["dimension"], str(r["timestamp"]))
        for r in sandbox.control.marketplace_records()
    ]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_meter_each_hour_once(market):
    now = now_()
    orgs = [linked_org(market, i) for i in range(12)]
    for org in orgs:
        usage(org, now)
    start = threading.Barrier(2)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            metering.prepare(now)
            results.append(drain(now))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own PostgreSQL connection

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    n = 12 * 4  # the four settled hours AWS still accepts
    assert MeteringRecord.objects.count() == n
    assert MeteringRecord.objects.filter(status=MeteringStatus.ACCEPTED).count() == n
    keys = emulator_keys(market)
    assert len(keys) == len(set(keys)) == n
    assert sum(r["accepted"] for r in results) == n  # nobody sent a record twice
    assert len(batch_calls(market)) == sum(r["calls"] for r in results) == math.ceil(n / 25)
    assert {r["quantity"] for r in market.control.marketplace_records()} == {3}


class _DiesAfterTheCall:
    """The worker process dies after AWS answered and before the answer was written."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def batch_meter_usage(self, **kwargs: Any) -> Any:
        self.client.batch_meter_usage(**kwargs)
        raise SystemExit("killed")


@pytest.mark.django_db
def test_a_crash_between_the_call_and_the_write_does_not_meter_twice(market):
    now = now_()
    orgs = [linked_org(market, i) for i in range(2)]
    for org in orgs:
        usage(org, now, hours=3)
    assert metering.prepare(now) == 6
    with pytest.raises(SystemExit):
        metering.send(now, client=_DiesAfterTheCall(metering.marketplace_client()))
    assert len(emulator_keys(market)) == 6  # AWS metered them ...
    assert set(MeteringRecord.objects.values_list("status", flat=True)) == {
        "pending"
    }  # ... we lost it
    # While the dead worker's lease runs, nobody sends them again.
    assert metering.send(now + timedelta(minutes=1))["calls"] == 0
    # After the lease, the next worker re-sends the same records: AWS answers them idempotently.
    later = now + metering.LEASE + timedelta(seconds=1)
    assert metering.prepare(later) == 0  # the records exist; no second record for an hour
    counts = drain(later)
    assert counts["accepted"] == 6
    assert counts["calls"] == 1
    keys = emulator_keys(market)
    assert len(keys) == len(set(keys)) == 6  # one record per hour key in the emulator
    ids = set(MeteringRecord.objects.values_list("metering_record_id", flat=True))
    assert len(ids) == 6
    assert "" not in ids
    assert {r["metering_record_id"] for r in market.control.marketplace_records()} == ids


@pytest.mark.django_db
def test_a_lost_answer_is_retried_with_backoff_and_metered_once(market):
    now = now_()
    usage(linked_org(market, 0), now, hours=2)
    metering.prepare(now)
    # The call is applied and its answer lost, twice: botocore's one quick retry (a call is two
    # attempts at most) and then ours, after the backoff.
    market.control.add_fault("drop_response", service="*", action="BatchMeterUsage", count=2)
    counts = metering.send(now)
    assert counts["retry"] == 2
    assert counts["accepted"] == 0
    record = MeteringRecord.objects.first()
    assert record.attempts == 1
    assert record.next_attempt_at == now + timedelta(seconds=60)
    assert drain(now + timedelta(seconds=59))["calls"] == 0  # backing off
    assert drain(now + timedelta(seconds=60))["accepted"] == 2
    keys = emulator_keys(market)
    assert len(keys) == len(set(keys)) == 2
    assert [c.outcome for c in batch_calls(market)] == ["drop_response", "drop_response", "ok"]


@pytest.mark.django_db
def test_throttling_is_retried_with_exponential_backoff(market):
    now = now_()
    usage(linked_org(market, 0), now, hours=1)
    metering.prepare(now)
    # Four throttled attempts: two calls of ours (each one attempt and botocore's quick retry).
    market.control.add_fault("throttle", service="*", action="BatchMeterUsage", count=4)
    assert metering.send(now)["retry"] == 1
    record = MeteringRecord.objects.get()
    assert "Throttling" in record.reason
    assert record.next_attempt_at == now + timedelta(seconds=60)
    at = record.next_attempt_at
    assert metering.send(at)["retry"] == 1
    record.refresh_from_db()
    assert record.next_attempt_at == at + timedelta(seconds=120)  # doubled
    assert metering.send(at + timedelta(seconds=119))["calls"] == 0
    assert metering.send(record.next_attempt_at)["accepted"] == 1
    record.refresh_from_db()
    assert record.status == "accepted"
    assert record.attempts == 3
    assert record.reason == ""


@pytest.mark.django_db
def test_unprocessed_records_are_retried(market):
    now = now_()
    for i in range(3):
        usage(linked_org(market, i), now, hours=2)
    assert metering.prepare(now) == 6
    market.control.marketplace_unprocessed(2)
    first = metering.send(now)
    assert (first["accepted"], first["retry"], first["calls"]) == (4, 2, 1)
    left = MeteringRecord.objects.filter(status="pending")
    assert left.count() == 2
    assert {r.reason for r in left} == {"unprocessed by AWS"}
    second = drain(now + timedelta(seconds=60))
    assert (second["accepted"], second["calls"]) == (2, 1)
    keys = emulator_keys(market)
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.django_db
def test_a_rejected_record_is_visible_with_its_reason(market, make_caller):
    now = now_()
    org = linked_org(market, 0, subscribe=False)  # not subscribed to the product at AWS
    usage(org, now, hours=1)
    metering.prepare(now)
    assert metering.send(now)["rejected"] == 1
    assert metering.send(now + timedelta(hours=1))["calls"] == 0  # rejected is final
    owner = make_caller(org, Role.OWNER)
    response = owner.client.get(f"/api/v1/orgs/{org.slug}/billing/metering?status=rejected")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert row["status"] == "rejected"
    assert row["reason"] == "CustomerNotSubscribed"
    assert row["quantity"] == 3
    assert emulator_keys(market) == []
    viewer = make_caller(org, Role.VIEWER)
    assert viewer.client.get(f"/api/v1/orgs/{org.slug}/billing/metering").status_code == 403
    bad = owner.client.get(f"/api/v1/orgs/{org.slug}/billing/metering?status=lost")
    assert bad.status_code == 422
    assert "status" in bad.json()["errors"]


@pytest.mark.django_db
def test_dead_letter_after_n_failures_with_an_alert(market, caplog, make_caller):
    now = now_()
    org = linked_org(market, 0)
    usage(org, now, hours=1)
    metering.prepare(now)
    market.control.add_fault("server_error", service="*", action="BatchMeterUsage")
    at = now
    with caplog.at_level(logging.ERROR, logger="controlplane.billing.metering"):
        for attempt in range(1, 5):
            counts = metering.send(at)
            record = MeteringRecord.objects.get()
            assert record.attempts == attempt
            at = record.next_attempt_at
    assert counts["dead"] == 1
    assert record.status == "dead"
    assert record.reason == "call failed: InternalFailure"
    assert metering.send(at + timedelta(days=1))["calls"] == 0  # a dead record is not sent again
    assert len(batch_calls(market)) == 4 * 2  # each of our calls: one attempt, one quick retry
    event = AuditEvent.objects.get(action="billing.metering_dead_letter")
    assert event.organization_id == org.pk
    assert event.data["attempts"] == 4
    assert any("dead-lettered" in r.getMessage() for r in caplog.records)
    owner = make_caller(org, Role.OWNER)
    dead = owner.client.get(f"/api/v1/orgs/{org.slug}/billing/metering?status=dead").json()
    assert len(dead["results"]) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("n_orgs", [1, 26, 51])
def test_calls_are_ceil_n_over_25(market, n_orgs):
    now = now_()
    for i in range(n_orgs):
        usage(linked_org(market, i), now)
    n = metering.prepare(now)
    assert n == n_orgs * 4
    counts = drain(now)
    assert counts["accepted"] == n
    assert len(batch_calls(market)) == counts["calls"] == math.ceil(n / 25)


@pytest.mark.django_db
def test_calls_are_ceil_n_over_25_per_product(market):
    now = now_()
    # Claims of 100 that mixed both products would cut calls short at every claim's end.
    for i in range(30):
        usage(linked_org(market, i, product="prod-a"), now)  # 120 records
    for i in range(30, 35):
        usage(linked_org(market, i, product="prod-b"), now)  # 20 records
    metering.prepare(now)
    counts = drain(now)
    assert counts["accepted"] == 140
    assert counts["calls"] == len(batch_calls(market)) == math.ceil(120 / 25) + math.ceil(20 / 25)


@pytest.mark.django_db
def test_only_hours_aws_still_accepts_are_prepared(market):
    now = now_()
    org = linked_org(market, 0)
    usage(org, now, hours=10)
    metering.prepare(now)
    hours = sorted(MeteringRecord.objects.values_list("hour", flat=True))
    assert hours[0] >= now - timedelta(hours=6)  # AWS refuses records more than 6 h old
    assert hours[-1] == floor_hour(now - metering.SETTLE) - HOUR  # the newest settled hour
