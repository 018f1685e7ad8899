"""AWS Marketplace metering (SaaS, hourly): every organization-hour metered exactly once.

* **One record per organization, hour and dimension** (a unique row), created once the hour has
  settled; its quantity never changes after that, so re-sending it is idempotent at AWS (the
  same customer, dimension, timestamp and quantity) — the crash between the call and the write
  is safe.
* **Two workers never send the same record at once**: a batch is claimed with
  ``SELECT … FOR UPDATE SKIP LOCKED`` and a lease; a worker that dies frees it when the lease ends.
* **At most 25 records a call** (the API's limit): a claim takes up to 100 records of one
  product, so n records of a product take ⌈n/25⌉ calls. A call is one attempt plus botocore's one
  quick retry; anything longer is our backoff below.
* Only hours AWS still accepts are prepared: a record's timestamp is at most six hours old.
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
from django.db.models import F, Q, Sum
from django.utils import timezone

from controlplane.billing.models import BillingProfile, MeteringRecord, MeteringStatus, UsageHour
from controlplane.billing.prices import compute_units
from controlplane.billing.rollups import HOUR, floor_hour
from controlplane.core import audit

log = logging.getLogger(__name__)
BATCH = 25
LEASE = timedelta(minutes=5)
MAX_CLAIMS = 50  # one run sends at most 5,000 records; the next run (10 minutes on) the rest
# An hour is metered once its usage has settled: rollups rebuild a trailing hour, reports arrive
# within minutes, and AWS accepts records up to six hours old.
SETTLE = timedelta(hours=1)
ACTOR = audit.Actor.system_actor("marketplace")


def marketplace_client() -> Any:
    """One botocore retry (``max_attempts`` counts retries): throttled and unprocessed records
    are retried by the metering run's own backoff, which keeps each record's state."""
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
    # AWS refuses a record more than six hours old: the oldest hour still sent starts inside it.
    since = ceil_hour(now - timedelta(hours=6))
    metered = set(
        MeteringRecord.objects.filter(hour__gte=since, organization_id__in=linked).values_list(
            "organization_id", "hour"
        )
    )
    unit_hours: dict[tuple[str, datetime], Decimal] = {}
    for org, hour, itype, seconds in (
        UsageHour.objects.filter(organization_ref__in=linked, hour__gte=since, hour__lte=last_hour)
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


def ceil_hour(at: datetime) -> datetime:
    floor = floor_hour(at)
    return floor if floor == at else floor + HOUR


def _claim(now: datetime) -> list[MeteringRecord]:
    """Lease up to 100 due records of one product (the oldest product first, then its hours).

    Rows of a second product that the same query locked are left unclaimed (their lock ends with
    the transaction), so every call but a product's last one carries a full 25 records.
    """
    with transaction.atomic():
        locked = list(
            MeteringRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=MeteringStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .annotate(product=F("organization__billing_profile__marketplace_product"))
            .order_by("product", "hour", "id")[: BATCH * 4]
        )
        batch: list[MeteringRecord] = [r for r in locked if r.product == locked[0].product]
        MeteringRecord.objects.filter(pk__in=[r.pk for r in batch]).update(
            claimed_until=now + LEASE
        )
    return batch


def send(
    now: datetime | None = None, *, client: Any = None, max_claims: int = MAX_CLAIMS
) -> dict[str, int]:
    """Send the pending records due now (claim after claim, up to ``max_claims`` of 100);
    returns counts by outcome and the calls made."""
    now = now or timezone.now()
    counts = {"calls": 0, "accepted": 0, "duplicate": 0, "rejected": 0, "retry": 0, "dead": 0}
    for _ in range(max_claims):
        batch = _claim(now)
        if not batch:
            break
        client = client or marketplace_client()
        _send_batch(client, batch, now, counts)
    return counts


def _send_batch(
    client: Any, batch: list[MeteringRecord], now: datetime, counts: dict[str, int]
) -> None:
    profiles = {
        p.organization_id: p
        for p in BillingProfile.objects.filter(
            organization_id__in={r.organization_id for r in batch}
        ).exclude(marketplace_customer="")
    }
    linked = []
    for record in batch:
        if record.organization_id in profiles:
            linked.append(record)
        else:  # unlinked since the hour was prepared: nobody at AWS to bill
            _finish(record, now, MeteringStatus.REJECTED, "not linked to AWS Marketplace", counts)
    for start in range(0, len(linked), BATCH):
        counts["calls"] += 1
        chunk = linked[start : start + BATCH]
        _send_chunk(
            client,
            profiles[chunk[0].organization_id].marketplace_product,
            chunk,
            profiles,
            now,
            counts,
        )


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
        status = result.get("Status")
        if status == "Success":
            _finish(
                found, now, MeteringStatus.ACCEPTED, "", counts, result.get("MeteringRecordId", "")
            )
        elif status == "DuplicateRecord":
            reason = "AWS already metered this hour with a different quantity."
            _finish(found, now, MeteringStatus.DUPLICATE, reason, counts)
        else:
            _finish(found, now, MeteringStatus.REJECTED, str(status or "unknown"), counts)
    # Whatever AWS left unprocessed (listed, or missing from the results) is tried again.
    for left in keyed.values():
        if left is not None:
            _retry(left, now, "unprocessed by AWS", counts)


def _finish(
    record: MeteringRecord,
    now: datetime,
    status: str,
    reason: str,
    counts: dict[str, int],
    metering_record_id: str = "",
) -> None:
    """AWS gave its final answer for the record (or it can no longer be sent)."""
    record.attempts += 1
    record.sent_at = now
    record.claimed_until = None
    record.status = status
    record.reason = reason
    record.metering_record_id = metering_record_id
    counts[status] += 1
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
