from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from computeplane_agent.connectors import managed_metastore_uri
from controlplane.catalogs.models import (
    Catalog,
    CatalogAttachment,
    Metastore,
    MetastoreKind,
    MetastoreStatus,
    PropagationStatus,
)
from controlplane.core.api.serializers import OperationRefSerializer

# --- connectors ---------------------------------------------------------------------------------


class EngineNamesSerializer(serializers.Serializer[Any]):
    presto = serializers.CharField(allow_null=True, help_text="PrestoDB's name; null: unsupported")
    trino = serializers.CharField(allow_null=True, help_text="Trino's name; null: unsupported")


class ConnectorPropertySerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="Engine-neutral key, as catalogs store it.")
    type = serializers.ChoiceField(
        choices=["string", "integer", "boolean", "duration", "data_size", "enum", "uri"]
    )
    values = serializers.ListField(child=serializers.CharField(), help_text="enum values")
    # The metaclass pops declared fields, so this does not shadow Field.required at runtime.
    required = serializers.BooleanField()  # type: ignore[assignment]
    default = serializers.CharField(allow_null=True)
    credential = serializers.BooleanField(
        help_text="Given under secrets as a Secrets Manager ARN, never in properties."
    )
    description = serializers.CharField()
    engines = EngineNamesSerializer()


class ConnectorSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    title = serializers.CharField()
    uses_metastore = serializers.BooleanField()
    engines = EngineNamesSerializer(help_text="connector.name on each engine")
    properties = ConnectorPropertySerializer(many=True)


# --- catalogs -----------------------------------------------------------------------------------


class PropagationSerializer(serializers.Serializer[Any]):
    cluster = serializers.CharField()
    version = serializers.IntegerField(help_text="The catalog version live on the cluster.")
    status = serializers.ChoiceField(choices=PropagationStatus.choices)
    message = serializers.CharField(allow_blank=True)
    observed_at = serializers.DateTimeField(allow_null=True)


def _live_attachments(catalog: Catalog) -> list[CatalogAttachment]:
    # Prefetched by the view (``live_attachments``); the fallback serves a fresh object.
    found = getattr(catalog, "live_attachments", None)
    if found is None:
        from controlplane.catalogs.services import LIVE_CLUSTER

        found = list(catalog.attachments.filter(LIVE_CLUSTER).order_by("cluster_id"))
    return found


class CatalogSerializer(serializers.ModelSerializer[Catalog]):
    metastore = serializers.CharField(source="metastore_id", allow_null=True, read_only=True)
    properties = serializers.DictField(child=serializers.CharField())
    secrets = serializers.DictField(
        help_text="property key → Secrets Manager ARN (or {arn, json_key}); never a value"
    )
    clusters = serializers.SerializerMethodField()
    propagation = serializers.SerializerMethodField()

    class Meta:
        model = Catalog
        fields = [
            "id",
            "name",
            "connector",
            "metastore",
            "properties",
            "secrets",
            "version",
            "clusters",
            "propagation",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_clusters(self, catalog: Catalog) -> list[str]:
        return [a.cluster_id for a in _live_attachments(catalog)]

    @extend_schema_field(PropagationSerializer(many=True))
    def get_propagation(self, catalog: Catalog) -> list[dict[str, Any]]:
        out = []
        for a in _live_attachments(catalog):
            status = a.status
            # A report of an older version after the change still means "not there yet".
            if status == PropagationStatus.LIVE and a.live_version < catalog.version:
                status = PropagationStatus.PENDING
            out.append(
                {
                    "cluster": a.cluster_id,
                    "version": a.live_version,
                    "status": status,
                    "message": a.message,
                    "observed_at": a.observed_at,
                }
            )
        return out


class CatalogInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=63)
    connector = serializers.CharField(max_length=63)
    metastore = serializers.CharField(required=False, allow_null=True, default=None)
    properties = serializers.DictField(required=False, default=dict)
    secrets = serializers.DictField(
        required=False,
        default=dict,
        help_text="property key → Secrets Manager ARN in your account",
    )


class CatalogUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=63, required=False)
    connector = serializers.CharField(max_length=63, required=False)
    metastore = serializers.CharField(required=False, allow_null=True)
    properties = serializers.DictField(required=False, help_text="replaces all properties")
    secrets = serializers.DictField(required=False, help_text="replaces all secrets")


# --- metastores ---------------------------------------------------------------------------------


class GlueSerializer(serializers.Serializer[Any]):
    region = serializers.CharField(max_length=32)
    catalog_id = serializers.CharField(max_length=12, required=False, allow_null=True)


class MetastoreSerializer(serializers.ModelSerializer[Metastore]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    glue = serializers.SerializerMethodField()
    endpoint = serializers.SerializerMethodField()
    operation = OperationRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Metastore
        fields = [
            "id",
            "name",
            "compute_plane",
            "kind",
            "uri",
            "glue",
            "version",
            "status",
            "endpoint",
            "operation",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(GlueSerializer(allow_null=True))
    def get_glue(self, metastore: Metastore) -> dict[str, Any] | None:
        return dict(metastore.glue) if metastore.kind == MetastoreKind.GLUE else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_endpoint(self, metastore: Metastore) -> str | None:
        """The Thrift URI clusters use: the in-plane Service of a ready managed metastore."""
        if metastore.kind == MetastoreKind.HIVE:
            return metastore.uri
        if metastore.kind == MetastoreKind.MANAGED and metastore.status == MetastoreStatus.READY:
            return managed_metastore_uri(metastore.id)
        return None


class MetastoreInput(serializers.Serializer[Any]):
    name = serializers.RegexField(
        r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$",
        error_messages={"invalid": "Use 2-40 lowercase letters, digits and hyphens."},
    )
    compute_plane = serializers.RegexField(r"^cp_[0-9a-z]+$")
    kind = serializers.ChoiceField(choices=MetastoreKind.choices)
    uri = serializers.CharField(required=False, allow_blank=True, default="", max_length=1024)
    glue = serializers.DictField(required=False, default=dict)
    version = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)


class MetastoreUpdateInput(serializers.Serializer[Any]):
    name = serializers.RegexField(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", required=False)
    uri = serializers.CharField(required=False, allow_blank=True, max_length=1024)
    glue = serializers.DictField(required=False)
    version = serializers.CharField(required=False, allow_blank=True, max_length=32)
