"""A compute plane: a VPC and an EKS cluster in a customer's AWS account."""

from __future__ import annotations

from typing import Any

from django.db import models

from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import (
    DriftChecked,
    OperatedResource,
    live_name_unique,
    organization_key,
)


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


class ComputePlane(OperatedResource, DriftChecked):
    id = PrefixedIdField("cp")
    organization = organization_key("compute_planes")
    cloud_account = models.ForeignKey(
        "cloudaccounts.CloudAccount", on_delete=models.PROTECT, related_name="compute_planes"
    )
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
    agent_status = models.CharField(
        max_length=12, choices=AgentStatus.choices, default=AgentStatus.PENDING
    )
    agent_version = models.CharField(max_length=40, blank=True)
    agent_last_seen_at = models.DateTimeField(null=True, blank=True)
    # A one-time token the agent exchanges for its credential (digest only; issue 5 uses it).
    bootstrap_token_digest = models.CharField(max_length=64, blank=True)
    bootstrap_token_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta(OperatedResource.Meta):
        # Named before the base existed (its default would be uniq_live_computeplane_name).
        constraints = [live_name_unique("uniq_live_compute_plane_name")]


def compute_plane_key(related_name: str) -> models.ForeignKey[Any, Any]:
    """The compute plane a :class:`PlaneResource` runs on (it must be deleted first)."""
    return models.ForeignKey(ComputePlane, on_delete=models.PROTECT, related_name=related_name)


class PlaneResource(OperatedResource):
    """A resource that runs on a compute plane (``compute_plane = compute_plane_key(…)``), with
    what the plane's agent last reported of it (its app's ``observed.py`` writes them)."""

    compute_plane: models.ForeignKey[Any, Any]
    observed_phase = models.CharField(max_length=16, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)

    class Meta(OperatedResource.Meta):
        abstract = True


class WorkloadResource(PlaneResource):
    """Pods on their own node group, published to the agent in the plane's desired state: the
    wait steps compare the version that carried the last change with the one the agent applied."""

    desired_version = models.PositiveIntegerField(default=0)
    observed_version = models.PositiveIntegerField(default=0)

    class Meta(PlaneResource.Meta):
        abstract = True

    @property
    def node_group(self) -> str:
        """The node label value (and node group name prefix) of this resource's nodes."""
        return f"lakeplane-{self.pk}".replace("_", "-")
