"""Metastores and catalogs: the metadata and connectors a Presto/Trino cluster queries through.

A catalog is defined once per organisation and attached to any number of clusters
(``CatalogAttachment``); every change bumps its ``version`` and the agent reports, per attached
cluster, which version is live. Credentials are never stored here: ``secrets`` holds Secrets
Manager ARNs in the customer's account only (DESIGN.md "Data separation").
"""

from __future__ import annotations

from django.db import models

from controlplane.computeplanes.models import PlaneResource, compute_plane_key
from controlplane.core.ids import PrefixedIdField
from controlplane.core.models import Resource, organization_key


class MetastoreKind(models.TextChoices):
    MANAGED = "managed"  # Hive standalone metastore run by the agent, on an RDS PostgreSQL
    HIVE = "hive"  # the customer's own metastore, by Thrift URI
    GLUE = "glue"  # AWS Glue Data Catalog


class MetastoreStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    READY = "ready"
    DELETING = "deleting"
    DELETED = "deleted"
    FAILED = "failed"


class Metastore(PlaneResource):
    id = PrefixedIdField("ms")
    organization = organization_key("metastores")
    compute_plane = compute_plane_key("metastores")
    kind = models.CharField(max_length=8, choices=MetastoreKind.choices)
    status = models.CharField(
        max_length=16, choices=MetastoreStatus.choices, default=MetastoreStatus.PROVISIONING
    )
    # hive: thrift://host:9083[,thrift://…]
    uri = models.CharField(max_length=1024, blank=True)
    # glue: {"region": …, "catalog_id": …}
    glue = models.JSONField(default=dict, blank=True)
    # managed: the Hive metastore release the agent runs.
    version = models.CharField(max_length=32, blank=True)
    # managed: what the RDS reconciler recorded — instance id, endpoint host/port, database name,
    # master username and the ARN (never the value) of the RDS-managed master secret.
    resources = models.JSONField(default=dict, blank=True)
    # From the agent's status reports (managed only), besides the base's observed_*.
    schema_ready = models.BooleanField(default=False)


class Catalog(Resource):
    id = PrefixedIdField("cat")
    organization = organization_key("catalogs")
    # A Presto identifier (``[a-z][a-z0-9_]*``), unique among the org's live catalogs (the
    # base's ``name``).
    connector = models.CharField(max_length=63)
    metastore = models.ForeignKey(
        Metastore, null=True, blank=True, on_delete=models.PROTECT, related_name="catalogs"
    )
    # Engine-neutral property keys of the connector registry (computeplane_agent/connectors.py).
    properties = models.JSONField(default=dict, blank=True)
    # property key -> Secrets Manager ARN in the customer's account. Never a secret value.
    secrets = models.JSONField(default=dict, blank=True)
    # Bumped by every change; the agent reports which version is live per attached cluster.
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)


class PropagationStatus(models.TextChoices):
    PENDING = "pending"
    LIVE = "live"
    FAILED = "failed"


class CatalogAttachment(models.Model):
    """A catalog mounted on a cluster, and which version of it the agent reports live there."""

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="attachments")
    cluster = models.ForeignKey(
        "clusters.Cluster", on_delete=models.CASCADE, related_name="catalog_attachments"
    )
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.CASCADE, related_name="+"
    )
    live_version = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=8, choices=PropagationStatus.choices, default=PropagationStatus.PENDING
    )
    message = models.CharField(max_length=2000, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["catalog", "cluster"], name="uniq_catalog_attachment")
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.catalog_id} on {self.cluster_id}"
