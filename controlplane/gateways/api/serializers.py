from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from computeplane_agent import contract
from controlplane.core.api.serializers import StrictBooleanField, StrictIntegerField
from controlplane.gateways.models import QueryRecord, RoutingGroup, RoutingRule

NAME_RE = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
NAME_ERRORS: dict[str, Any] = {"invalid": "Use 2-40 lowercase letters, digits and hyphens."}
GROUP_ID_RE = r"^rg_[0-9a-z]{1,40}$"
CLUSTER_ID_RE = r"^cl_[0-9a-z]{1,40}$"


class MatchSerializer(serializers.Serializer[Any]):
    """Every given field must match; an empty match matches every request. Patterns are
    regular expressions matched against the whole value."""

    user = serializers.CharField(required=False)
    source = serializers.CharField(required=False)  # type: ignore[assignment]
    client_tags = serializers.ListField(child=serializers.CharField(), required=False)
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    catalog = serializers.CharField(required=False)
    schema = serializers.CharField(required=False)


class RoutingGroupSerializer(serializers.ModelSerializer[RoutingGroup]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    clusters = serializers.SerializerMethodField()
    fallback = serializers.CharField(source="fallback_id", read_only=True, allow_null=True)

    class Meta:
        model = RoutingGroup
        fields = [
            "id",
            "name",
            "compute_plane",
            "clusters",
            "fallback",
            "prefer_cache",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_clusters(self, group: RoutingGroup) -> list[str]:
        # Lists prefetch the members; sorted here so the answer does not depend on the join.
        return sorted(c.id for c in group.clusters.all())


class RoutingGroupCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(NAME_RE, error_messages=NAME_ERRORS)
    clusters = serializers.ListField(
        child=serializers.RegexField(CLUSTER_ID_RE), max_length=contract.MAX_CLUSTERS
    )
    fallback = serializers.RegexField(GROUP_ID_RE, required=False, allow_null=True)
    prefer_cache = StrictBooleanField(required=False)


class RoutingGroupUpdateSerializer(RoutingGroupCreateSerializer):
    name = serializers.RegexField(NAME_RE, error_messages=NAME_ERRORS, required=False)
    clusters = serializers.ListField(
        child=serializers.RegexField(CLUSTER_ID_RE),
        max_length=contract.MAX_CLUSTERS,
        required=False,
    )


class RoutingRuleSerializer(serializers.ModelSerializer[RoutingRule]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    group = serializers.CharField(source="group_id", read_only=True)
    match = MatchSerializer(read_only=True)

    class Meta:
        model = RoutingRule
        fields = ["id", "name", "compute_plane", "priority", "group", "match", "created_at"]
        read_only_fields = fields


class RoutingRuleCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(NAME_RE, error_messages=NAME_ERRORS)
    priority = StrictIntegerField(required=False, min_value=0, max_value=1_000_000)
    group = serializers.RegexField(GROUP_ID_RE)
    # Checked field by field by the services (422 under match.<field>).
    match = serializers.JSONField(required=False)


class RoutingRuleUpdateSerializer(RoutingRuleCreateSerializer):
    name = serializers.RegexField(NAME_RE, error_messages=NAME_ERRORS, required=False)
    group = serializers.RegexField(GROUP_ID_RE, required=False)


class RetentionSerializer(serializers.Serializer[Any]):
    enabled = StrictBooleanField(required=False)
    days = StrictIntegerField(required=False)


class GatewayHealthSerializer(serializers.Serializer[Any]):
    interval_seconds = serializers.FloatField(required=False)
    timeout_seconds = serializers.FloatField(required=False)
    fail_threshold = StrictIntegerField(required=False)
    success_threshold = StrictIntegerField(required=False)


class GatewayWakeSerializer(serializers.Serializer[Any]):
    enabled = StrictBooleanField(required=False)
    max_wait_seconds = serializers.FloatField(required=False)


class GatewaySerializer(serializers.Serializer[Any]):
    """Rendered from :func:`views.gateway_document` (the row may not exist yet)."""

    compute_plane = serializers.CharField()
    endpoint = serializers.CharField(allow_null=True)
    enabled = serializers.BooleanField()
    replicas = serializers.IntegerField()
    replicas_ready = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["disabled", "pending", "running", "degraded"])
    config_version = serializers.CharField(allow_null=True)
    routing_groups = RoutingGroupSerializer(many=True)
    rules = RoutingRuleSerializer(many=True)
    default_group = serializers.CharField(allow_null=True)
    query_text_retention = RetentionSerializer()
    health = GatewayHealthSerializer()
    wake = GatewayWakeSerializer()


class GatewayUpdateSerializer(serializers.Serializer[Any]):
    enabled = StrictBooleanField(required=False)
    replicas = StrictIntegerField(required=False)
    default_group = serializers.RegexField(GROUP_ID_RE, required=False, allow_null=True)
    query_text_retention = RetentionSerializer(required=False)
    health = serializers.DictField(required=False)
    wake = serializers.DictField(required=False)


class RouteRequestSerializer(serializers.Serializer[Any]):
    user = serializers.CharField(required=False, allow_null=True, max_length=256)
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_null=True, max_length=256
    )
    client_tags = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=100
    )
    headers = serializers.DictField(child=serializers.CharField(max_length=4096), required=False)
    catalog = serializers.CharField(required=False, allow_null=True, max_length=256)
    schema = serializers.CharField(required=False, allow_null=True, max_length=256)


class RouteDecisionSerializer(serializers.Serializer[Any]):
    group = serializers.CharField(allow_null=True)
    cluster = serializers.CharField(allow_null=True)
    wake = serializers.CharField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class QueryRecordSerializer(serializers.ModelSerializer[QueryRecord]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    cluster = serializers.CharField(source="cluster_id", read_only=True, allow_null=True)

    class Meta:
        model = QueryRecord
        fields = [
            "id",
            "query_id",
            "compute_plane",
            "cluster",
            "routing_group",
            "user",
            "source",
            "state",
            "error_name",
            "queued_ms",
            "elapsed_ms",
            "bytes_in",
            "bytes_out",
            "started_at",
            "finished_at",
            "query_text",
        ]
        read_only_fields = fields
