"""The compute plane's query gateway: its settings, routing groups, routing rules and the query
history its replicas report.

The gateway itself runs in the customer's VPC (``computeplane_agent/gateway``); these rows are
what the control plane publishes to it as ``DesiredState.gateway`` (``desired.py``).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from controlplane.computeplanes.models import ComputePlane
from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import organization_key

DEFAULT_REPLICAS = 2
DEFAULT_TEXT_RETENTION_DAYS = 30


class Gateway(models.Model):
    """One per compute plane, created on the first PATCH; a plane without a row has the
    defaults (enabled, two replicas, no query text leaves the VPC)."""

    id = PrefixedIdField("gw")
    organization = organization_key("gateways")
    compute_plane = models.OneToOneField(
        ComputePlane, on_delete=models.CASCADE, related_name="gateway"
    )
    enabled = models.BooleanField(default=True)
    replicas = models.PositiveSmallIntegerField(default=DEFAULT_REPLICAS)
    # Where a request no rule matches goes; null: such a request is refused with a reason.
    default_group = models.ForeignKey(
        "RoutingGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Query text leaves the VPC only when this is on (an explicit choice of the organization's
    # admins); it is kept this many days, then cleared.
    query_text_enabled = models.BooleanField(default=False)
    query_text_days = models.PositiveSmallIntegerField(default=DEFAULT_TEXT_RETENTION_DAYS)
    # contract.GatewayHealthSpec / GatewayWakeSpec, as given (defaults when empty).
    health = models.JSONField(default=dict, blank=True)
    wake = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"gateway of {self.compute_plane_id}"


class RoutingGroup(models.Model):
    """A set of clusters that take the same queries; the gateway picks the least loaded."""

    id = PrefixedIdField("rg")
    organization = organization_key("routing_groups")
    compute_plane = models.ForeignKey(
        ComputePlane, on_delete=models.CASCADE, related_name="routing_groups"
    )
    name = models.CharField(max_length=40)
    clusters = models.ManyToManyField("clusters.Cluster", related_name="routing_groups")
    # Where queries go when no cluster of this group can take them (never a random cluster).
    fallback = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="fallback_for"
    )
    prefer_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["compute_plane", "name"], name="uniq_routing_group")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class RoutingRule(models.Model):
    """Picks a group from the request; rules apply lowest priority first, ties by name."""

    id = PrefixedIdField("rr")
    organization = organization_key("routing_rules")
    compute_plane = models.ForeignKey(
        ComputePlane, on_delete=models.CASCADE, related_name="routing_rules"
    )
    name = models.CharField(max_length=40)
    priority = models.PositiveIntegerField(default=100)
    group = models.ForeignKey(RoutingGroup, on_delete=models.PROTECT, related_name="rules")
    # {"user", "source", "client_tags", "headers", "catalog", "schema"}: regular expressions
    # matched against the whole value (client_tags: all must be present).
    match = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["compute_plane", "name"], name="uniq_routing_rule")
        ]
        indexes = [models.Index(fields=["compute_plane", "priority", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class QueryState(models.TextChoices):
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class QueryRecord(models.Model):
    """One query as a gateway replica saw it: metadata; text only where the plane allows it."""

    id = PrefixedIdField("qry")
    organization = organization_key("query_records")
    compute_plane = models.ForeignKey(
        ComputePlane, on_delete=models.CASCADE, related_name="query_records"
    )
    # The engine's query id; with the plane, what makes a reported record idempotent.
    query_id = models.CharField(max_length=128)
    cluster = models.ForeignKey(
        "clusters.Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="query_records",
    )
    routing_group = models.CharField(max_length=40, blank=True)
    user = models.CharField(max_length=256, blank=True)
    source = models.CharField(max_length=256, blank=True)
    state = models.CharField(max_length=8, choices=QueryState.choices)
    error_name = models.CharField(max_length=256, blank=True)
    queued_ms = models.BigIntegerField(default=0)
    elapsed_ms = models.BigIntegerField(default=0)
    bytes_in = models.BigIntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    # Empty unless the plane keeps query text (and cleared once its retention has passed).
    query_text = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["compute_plane", "query_id"], name="uniq_query_record")
        ]
        indexes = [
            models.Index(fields=["organization", "-id"]),
            models.Index(fields=["organization", "cluster", "-id"]),
            models.Index(fields=["organization", "user", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.query_id} {self.state} ({self.compute_plane_id})"
