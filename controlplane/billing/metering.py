"""AWS Marketplace metering (SaaS, hourly): every organization-hour metered exactly once.

* **One record per organization, hour and dimension** (a unique row), created once the hour has
  settled; its quantity never changes after that, so re-sending it is idempotent at AWS (the
  same customer, dimension, timestamp and quantity) — the crash between the call and the write
  is safe.
* **Two workers never send the same record at once**: a batch is claimed with
  ``SELECT … FOR UPDATE SKIP LOCKED`` and a lease; a worker that dies frees it when the lease ends.
* **At most 25 records a call** (the API's limit), grouped by product code.
* Each result is stored per record: ``accepted`` (with AWS's MeteringRecordId), ``duplicate``,
  ``rejected`` with the reason; unprocessed records and throttled calls are retried with
  exponential backoff, and after ``LAKEPLANE_MARKETPLACE_MAX_ATTEMPTS`` a record is ``dead``:
  logged at error level and audit-logged so an operator sees it.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from controlplane.billing.models import BillingProfile, MeteringRecord, MeteringStatus, UsageHour
from controlplane.billing.prices import compute_units
from controlplane.billing.rollups import HOUR, floor_hour
from controlplane.core import audit

log = logging.getLogger(__name__)
BATCH = 25
LEASE = timedelta(minutes=5)
# An hour is metered once its usage has settled: rollups rebuild a trailing hour, reports arrive
# within minutes, and AWS accepts records up to six hours old.
SETTLE = timedelta(hours=1)
ACTOR = audit.Actor.system_actor("marketplace")


def marketplace_client() -> Any:
    from controlplane.cloudaccounts.aws import aws_clients

    return aws_clients().client(
        "meteringmarketplace", region=settings.LAKEPLANE_MARKETPLACE_REGION, max_attempts=1
    )


def resolve_customer(registration_token: str) -> dict[str, str]:
    """Exchange the marketplace's sign-up token for the customer (``ResolveCustomer``)."""
    answer = marketplace_client().resolve_customer(RegistrationToken=registration_token)
    return {
        "customer": answer["CustomerIdentifier"],
        "product": answer["ProductCode"],
        "account": answer.get("CustomerAWSAccountId", ""),
    }


def prepare(now: datetime | None = None) -> int:
    """Create the metering records of every settled, unmetered hour with usage; returns how many."""
    now = now or timezone.now()
    last_hour = floor_hour(now - SETTLE) - HOUR  # the newest hour that has fully settled
    dimension = settings.LAKEPLANE_MARKETPLACE_DIMENSION
    linked = dict(
        BillingProfile.objects.exclude(marketplace_customer="").values_list(
            "organization_id", "updated_at"
        )
    )
    if not linked:
        return 0
    since = now - timedelta(hours=6)  # older hours can no longer be metered
    metered = set(
        MeteringRecord.objects.filter(hour__gte=since, organization_id__in=linked).values_list(
            "organization_id", "hour"
        )
    )
    unit_hours: dict[tuple[str, datetime], Decimal] = {}
    for org, hour, itype, seconds in (
        UsageHour.objects.filter(
            organization_ref__in=linked, hour__gte=floor_hour(since), hour__lte=last_hour
        )
        .values("organization_ref", "hour", "instance_type")
        .annotate(seconds=Sum("node_seconds"))
        .values_list("organization_ref", "hour", "instance_type", "seconds")
        .order_by()
    ):
        key = (org, hour)
        unit_hours[key] = unit_hours.get(key, Decimal(0)) + Decimal(seconds) / 3600 * compute_units(
            itype
        )
    created = 0
    for (org, hour), amount in sorted(unit_hours.items()):
        if (org, hour) in metered or amount <= 0:
            continue
        _, made = MeteringRecord.objects.get_or_create(
            organization_id=org,
            hour=hour,
            dimension=dimension,
            defaults={"quantity": math.ceil(amount), "next_attempt_at": now},
        )
        created += made
    return created


def _claim(now: datetime) -> list[MeteringRecord]:
    with transaction.atomic():
        batch = list(
            MeteringRecord.objects.select_for_update(skip_locked=True)
            .filter(status=MeteringStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("hour", "id")[: BATCH * 4]
        )
        MeteringRecord.objects.filter(pk__in=[r.pk for r in batch]).update(
            claimed_until=now + LEASE
        )
    return batch


def send(now: datetime | None = None, *, client: Any = None) -> dict[str, int]:
    """Send the pending records due now; returns counts by outcome and the calls made."""
    now = now or timezone.now()
    batch = _claim(now)
    counts = {"calls": 0, "accepted": 0, "duplicate": 0, "rejected": 0, "retry": 0, "dead": 0}
    if not batch:
        return counts
    client = client or marketplace_client()
    profiles = {
        p.organization_id: p
        for p in BillingProfile.objects.filter(
            organization_id__in={r.organization_id for r in batch}
        )
    }
    by_product: dict[str, list[MeteringRecord]] = {}
    for record in batch:
        by_product.setdefault(profiles[record.organization_id].marketplace_product, []).append(
            record
        )
    for product, records in by_product.items():
        for start in range(0, len(records), BATCH):
            chunk = records[start : start + BATCH]
            counts["calls"] += 1
            _send_chunk(client, product, chunk, profiles, now, counts)
    return counts


def _key(customer: str, dimension: str, at: datetime) -> tuple[str, str, str]:
    return customer, dimension, at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _send_chunk(
    client: Any,
    product: str,
    chunk: list[MeteringRecord],
    profiles: dict[str, BillingProfile],
    now: datetime,
    counts: dict[str, int],
) -> None:
    keyed: dict[tuple[str, str, str], MeteringRecord | None] = {
        _key(profiles[r.organization_id].marketplace_customer, r.dimension, r.hour): r
        for r in chunk
    }
    try:
        answer = client.batch_meter_usage(
            ProductCode=product,
            UsageRecords=[
                {
                    "Timestamp": r.hour,
                    "CustomerIdentifier": profiles[r.organization_id].marketplace_customer,
                    "Dimension": r.dimension,
                    "Quantity": r.quantity,
                }
                for r in chunk
            ],
        )
    except (ClientError, BotoCoreError) as exc:
        reason = (
            exc.response.get("Error", {}).get("Code", "error")
            if isinstance(exc, ClientError)
            else type(exc).__name__
        )
        for record in chunk:
            _retry(record, now, f"call failed: {reason}", counts)
        return
    for result in answer.get("Results", []):
        usage = result["UsageRecord"]
        found = keyed.pop(
            _key(usage["CustomerIdentifier"], usage["Dimension"], usage["Timestamp"]), None
        )
        if found is None:
            continue
        record = found
        status = result.get("Status")
        record.attempts += 1
        record.sent_at = now
        record.claimed_until = None
        if status == "Success":
            record.status = MeteringStatus.ACCEPTED
            record.metering_record_id = result.get("MeteringRecordId", "")
            record.reason = ""
        elif status == "DuplicateRecord":
            record.status = MeteringStatus.DUPLICATE
            record.reason = "AWS already metered this hour with a different quantity."
        else:
            record.status = MeteringStatus.REJECTED
            record.reason = str(status or "unknown")
        counts[record.status] += 1
        record.save(
            update_fields=[
                "status",
                "attempts",
                "sent_at",
                "claimed_until",
                "metering_record_id",
                "reason",
            ]
        )
    # Whatever AWS left unprocessed (listed, or missing from the results) is tried again.
    for left in keyed.values():
        if left is not None:
            _retry(left, now, "unprocessed by AWS", counts)


def _retry(record: MeteringRecord, now: datetime, reason: str, counts: dict[str, int]) -> None:
    record.attempts += 1
    record.claimed_until = None
    record.reason = reason
    if record.attempts >= settings.LAKEPLANE_MARKETPLACE_MAX_ATTEMPTS:
        record.status = MeteringStatus.DEAD
        counts["dead"] += 1
        log.error(
            "marketplace record dead-lettered",
            extra={"organization_id": record.organization_id, "hour": record.hour.isoformat()},
        )
        audit.record(
            actor=ACTOR,
            organization=record.organization,
            action="billing.metering_dead_letter",
            target=("metering_record", str(record.pk)),
            data={"hour": record.hour.isoformat(), "attempts": record.attempts, "reason": reason},
        )
    else:
        delay = settings.LAKEPLANE_MARKETPLACE_BACKOFF_SECONDS * 2 ** (record.attempts - 1)
        record.next_attempt_at = now + timedelta(seconds=delay)
        counts["retry"] += 1
    record.save(update_fields=["attempts", "claimed_until", "reason", "status", "next_attempt_at"])
