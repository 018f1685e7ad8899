"""Usage facts, their rollups, the price book, budgets and marketplace metering.

Usage is kept as *facts*: node-seconds per series (organization, compute plane, cluster, instance
type, purchase option, node role) per minute, rebuilt from the sources (the agent's usage
reports and the clusters' events) whenever a window is recomputed — never patched. Rows name
their organization, plane and cluster by id rather than by foreign key: a bill outlives the
cluster, the plane and (for the finance team's records) even the organization.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from controlplane.core.ids import PrefixedIdField


class PurchaseOption(models.TextChoices):
    ON_DEMAND = "on_demand"
    SPOT = "spot"


class NodeRole(models.TextChoices):
    COORDINATOR = "coordinator"
    WORKER = "worker"
    METASTORE = "metastore"
    CACHE = "cache"
    GATEWAY = "gateway"


class _Series(models.Model):
    """The key every usage table shares."""

    organization_ref = models.CharField(max_length=40)
    compute_plane_ref = models.CharField(max_length=40)
    cluster_ref = models.CharField(max_length=40)
    instance_type = models.CharField(max_length=32)
    purchase_option = models.CharField(max_length=10, choices=PurchaseOption.choices)
    role = models.CharField(max_length=12, choices=NodeRole.choices)
    # node_seconds includes estimated_seconds: the part not vouched for by an agent report,
    # billed at the last known state (the cluster's events) and flagged on every statement.
    node_seconds = models.PositiveBigIntegerField()
    estimated_seconds = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class UsageMinute(_Series):
    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster_ref", "instance_type", "purchase_option", "role", "minute"],
                name="uniq_usage_minute",
            )
        ]
        indexes = [
            models.Index(fields=["minute"]),
            models.Index(fields=["organization_ref", "minute"]),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_ref} {self.instance_type} {self.role} {self.minute:%Y-%m-%dT%H:%M}"


class UsageHour(_Series):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster_ref", "instance_type", "purchase_option", "role", "hour"],
                name="uniq_usage_hour",
            )
        ]
        indexes = [models.Index(fields=["hour"]), models.Index(fields=["organization_ref", "hour"])]

    def __str__(self) -> str:
        return f"{self.cluster_ref} {self.instance_type} {self.role} {self.hour:%Y-%m-%dT%H}"


class UsageDay(_Series):
    """One calendar day in the organization's time zone (as it was when the day was rolled up)."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cluster_ref", "instance_type", "purchase_option", "role", "day"],
                name="uniq_usage_day",
            )
        ]
        indexes = [models.Index(fields=["organization_ref", "day"])]

    def __str__(self) -> str:
        return f"{self.cluster_ref} {self.instance_type} {self.role} {self.day}"


class ReportedPeriod(models.Model):
    """A period an agent's usage report covered: what ran then is what the report says."""

    compute_plane_ref = models.CharField(max_length=40)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["compute_plane_ref", "period_end"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.compute_plane_ref} {self.period_start}..{self.period_end}"


class RollupCursor(models.Model):
    """Where the incremental rollup stands (one row)."""

    name = models.CharField(max_length=32, unique=True)
    built_until = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} until {self.built_until}"


# --- prices -----------------------------------------------------------------------------------
class PriceBook(models.Model):
    """One version of Lakeplane's list prices, effective from the start of a (UTC) day."""

    version = models.CharField(max_length=32, unique=True)
    effective_from = models.DateField(unique=True)
    currency = models.CharField(max_length=3, default="USD")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["effective_from"]

    def __str__(self) -> str:
        return f"{self.version} from {self.effective_from}"


class Price(models.Model):
    """Fee in cents per compute-unit-hour for an instance family ("*" for any) and a role."""

    book = models.ForeignKey(PriceBook, on_delete=models.CASCADE, related_name="prices")
    instance_family = models.CharField(max_length=16, default="*")
    role = models.CharField(max_length=12, choices=NodeRole.choices)
    cents_per_unit_hour = models.DecimalField(max_digits=12, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["book", "instance_family", "role"], name="uniq_price_per_book"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_family}/{self.role}: {self.cents_per_unit_hour}c"


class BillingProfile(models.Model):
    """An organization's billing settings: time zone, contract terms, budget, marketplace link."""

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="billing_profile"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    # A contract: a fixed unit price replacing the list price, and/or a percentage off.
    contract_cents_per_unit_hour = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True
    )
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    monthly_budget_cents = models.PositiveBigIntegerField(null=True, blank=True)
    marketplace_customer = models.CharField(max_length=64, blank=True)
    marketplace_product = models.CharField(max_length=64, blank=True)
    marketplace_account = models.CharField(max_length=12, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"billing of {self.organization_id}"


class Credit(models.Model):
    """A fixed amount off one month's statement, applied after discounts."""

    id = PrefixedIdField("cred")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="credits"
    )
    month = models.DateField()  # the first day of the month it applies to
    amount_cents = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.amount_cents}c for {self.month:%Y-%m}"


class BudgetAlert(models.Model):
    """A budget threshold that fired for a month (at most once per threshold)."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="budget_alerts"
    )
    month = models.DateField()
    threshold = models.PositiveSmallIntegerField()
    basis = models.CharField(max_length=8)  # "actual" or "forecast"
    amount_cents = models.PositiveBigIntegerField()
    budget_cents = models.PositiveBigIntegerField()
    fired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "month", "threshold"], name="uniq_budget_alert"
            )
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.month:%Y-%m} ({self.basis})"


# --- marketplace metering ---------------------------------------------------------------------
class MeteringStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    DEAD = "dead"  # gave up after N unprocessed attempts; an operator is alerted


class MeteringRecord(models.Model):
    """One organization-hour sent to AWS Marketplace; the key makes every hour metered once."""

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="metering_records"
    )
    hour = models.DateTimeField()
    dimension = models.CharField(max_length=64)
    quantity = models.PositiveBigIntegerField()
    status = models.CharField(
        max_length=10, choices=MeteringStatus.choices, default=MeteringStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    metering_record_id = models.CharField(max_length=128, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "hour", "dimension"], name="uniq_metering_hour"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.hour:%Y-%m-%dT%H} {self.dimension}: {self.status}"
