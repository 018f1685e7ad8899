"""A compute plane: a VPC and an EKS cluster in a customer's AWS account."""

from __future__ import annotations

from django.db import models

from controlplane.core.ids import PrefixedIdField


class ComputePlaneStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    READY = "ready"
    UPDATING = "updating"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"
    # A drift check found resources missing or changed (``findings``); repair rebuilds them.
    DEGRADED = "degraded"


class AgentStatus(models.TextChoices):
    PENDING = "pending"
    CONNECTED = "connected"
    STALE = "stale"


class EndpointAccess(models.TextChoices):
    PRIVATE = "private"
    PUBLIC_AND_PRIVATE = "public_and_private"


class ComputePlane(models.Model):
    id = PrefixedIdField("cp")
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="compute_planes"
    )
    cloud_account = models.ForeignKey(
        "cloudaccounts.CloudAccount", on_delete=models.PROTECT, related_name="compute_planes"
    )
    name = models.CharField(max_length=63)
    region = models.CharField(max_length=32)
    vpc_cidr = models.CharField(max_length=18, default="10.42.0.0/16")
    availability_zones = models.PositiveSmallIntegerField(default=2)
    kubernetes_version = models.CharField(max_length=8)
    endpoint_access = models.CharField(
        max_length=20, choices=EndpointAccess.choices, default=EndpointAccess.PRIVATE
    )
    public_access_cidrs = models.JSONField(default=list, blank=True)
    control_plane_logging = models.JSONField(default=list, blank=True)
    nat_mode = models.CharField(max_length=8, default="per_az")
    # Envelope encryption of Kubernetes secrets with the customer's own KMS key, if given.
    kms_key_arn = models.CharField(max_length=2048, blank=True)
    status = models.CharField(
        max_length=16, choices=ComputePlaneStatus.choices, default=ComputePlaneStatus.PROVISIONING
    )
    # Ids of everything built for it, recorded the moment AWS returns them.
    resources = models.JSONField(default=dict, blank=True)
    operation = models.ForeignKey(
        "core.Operation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent_status = models.CharField(
        max_length=12, choices=AgentStatus.choices, default=AgentStatus.PENDING
    )
    agent_version = models.CharField(max_length=40, blank=True)
    agent_last_seen_at = models.DateTimeField(null=True, blank=True)
    # A one-time token the agent exchanges for its credential (digest only; issue 5 uses it).
    bootstrap_token_digest = models.CharField(max_length=64, blank=True)
    bootstrap_token_expires_at = models.DateTimeField(null=True, blank=True)
    # [{check, detail}] from the last drift check that found something (computeplanes/drift.py).
    findings = models.JSONField(default=list, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # When the periodic drift check looks next; staggered per plane so tenants are spread out.
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="uniq_live_compute_plane_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"
