"""What the control plane keeps about each compute plane's agent.

Credentials (hashed), the desired-state document the agent polls, a record of every report
received (so a replay is recognised), what the agent last observed, and usage rows for billing.
The wire format of all of it is ``computeplane_agent.contract``; these rows store it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlplane.core.ids import PrefixedIdField

# The public scheme markers of the two secrets an agent ever holds (not secrets themselves).
CREDENTIAL_SCHEME = "lpa"  # a per-agent credential
BOOTSTRAP_SCHEME = "lpb"  # a one-time bootstrap token


def rotation_due(*, expires_at: datetime, replaced: bool, now: datetime) -> bool:
    """Whether a heartbeat should go through ``services.rotate_if_due``: the credential is in
    the last third of its life, or was replaced already (rotate_if_due then checks that the
    replacement reached the agent)."""
    lifetime = timedelta(seconds=settings.LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS)
    return replaced or expires_at - now <= lifetime / 3


def digest_of(secret: str) -> str:
    """SHA-256 of a secret. The secrets carry 256 random bits, so no salt or stretching is
    needed: there is nothing to guess, and a fast hash keeps authentication cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


class AgentCredential(models.Model):
    """A per-agent credential, valid for one compute plane only.

    The secret is returned once (on register or rotation); only its digest is stored. A
    rotation sets ``replaced_by`` and shortens ``expires_at`` to the end of the overlap, so
    "is it valid" is always the same two checks: not revoked, not expired.
    """

    id = PrefixedIdField("agc")
    compute_plane = models.ForeignKey(
        "computeplanes.ComputePlane", on_delete=models.CASCADE, related_name="agent_credentials"
    )
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set the first time the credential authenticates: a replacement that was never used was
    # never received (its response got lost), so it may be replaced again.
    first_used_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )

    class Meta:
        indexes = [models.Index(fields=["compute_plane", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.compute_plane_id})"


class DesiredState(models.Model):
    """The one desired-state document of a compute plane and its version (the ETag)."""

    compute_plane = models.OneToOneField(
        "computeplanes.ComputePlane",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="desired_state",
    )
    version = models.PositiveBigIntegerField(default=0)
    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.compute_plane_id} v{self.version}"


class AgentPresence(models.Model):
    """The agent's latest heartbeat, as the agent stamped it.

    Heartbeats carry no report id; ``sent_at`` orders them instead. A heartbeat is applied only
    if it is newer than the last one applied, so a replayed or late one changes nothing.
    """

    compute_plane = models.OneToOneField(
        "computeplanes.ComputePlane",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="agent_presence",
    )
    heartbeat_sent_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveBigIntegerField(null=True, blank=True)
    contract_version = models.CharField(max_length=16, blank=True)
    kubernetes_version = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.compute_plane_id} at {self.heartbeat_sent_at}"


class ReportKind(models.TextChoices):
    STATUS = "status"
    HEARTBEAT = "heartbeat"
    USAGE = "usage"


class AgentReport(models.Model):
    """One report received from an agent, keyed by the agent's report id.

    A replay (the agent retries after a lost response) finds this row and gets ``result``
    back without any effect being applied twice. Rows older than the replay window are
    pruned by a beat task.
    """

    compute_plane = models.ForeignKey(
        "computeplanes.ComputePlane", on_delete=models.CASCADE, related_name="agent_reports"
    )
    kind = models.CharField(max_length=12, choices=ReportKind.choices)
    report_id = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)
    result = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["compute_plane", "kind", "report_id"], name="uniq_agent_report"
            )
        ]
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.report_id} ({self.compute_plane_id})"


class ObservedState(models.Model):
    """What the agent last reported about the compute plane's workloads (status reports)."""

    compute_plane = models.OneToOneField(
        "computeplanes.ComputePlane",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="observed_state",
    )
    document = models.JSONField(default=dict)
    observed_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.compute_plane_id} at {self.observed_at}"


class UsageRecord(models.Model):
    """Nodes of one instance type that ran for one role of one resource during one period
    (billing input).

    ``resource_id`` is the cluster (coordinator, worker), cache, metastore, or — for the
    gateway, one per plane — the compute plane itself. ``role`` is blank for the first
    contract's cluster samples, which billing splits into coordinator and workers.

    Billing needs these after the resource and the compute plane are gone (a plane deleted on
    the 20th is billed for the 1st to the 20th, and a month is rebuilt from them), so the key
    to the plane has no database constraint and deleting the plane leaves the rows alone; the
    resource is named by id for the same reason.
    """

    compute_plane = models.ForeignKey(
        "computeplanes.ComputePlane",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="usage_records",
    )
    report = models.ForeignKey(AgentReport, on_delete=models.SET_NULL, null=True, blank=True)
    resource_id = models.CharField(max_length=48)
    role = models.CharField(max_length=12, blank=True)
    instance_type = models.CharField(max_length=32)
    nodes = models.PositiveIntegerField()
    seconds = models.PositiveIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["compute_plane", "period_start"]),
            models.Index(fields=["resource_id", "period_start"]),
        ]

    def __str__(self) -> str:
        return f"{self.resource_id} {self.role} {self.nodes}x{self.instance_type} {self.seconds}s"
