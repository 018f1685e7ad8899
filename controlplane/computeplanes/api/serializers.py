from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.cloudaccounts.api.serializers import FindingSerializer
from controlplane.computeplanes.models import ComputePlane, EndpointAccess
from controlplane.computeplanes.services import (
    DEFAULT_KUBERNETES_VERSION,
    LOG_TYPES,
)
from controlplane.core.api.serializers import OperationRefSerializer


class AgentSerializer(serializers.Serializer[Any]):
    status = serializers.CharField()
    version = serializers.CharField(allow_blank=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)


class ResourcesSerializer(serializers.Serializer[Any]):
    vpc_id = serializers.CharField(allow_null=True)
    subnet_ids = serializers.ListField(child=serializers.CharField())
    eks_cluster_name = serializers.CharField(allow_null=True)
    eks_endpoint = serializers.CharField(allow_null=True)
    buckets = serializers.DictField(child=serializers.CharField())


class ComputePlaneSerializer(serializers.ModelSerializer[ComputePlane]):
    cloud_account = serializers.CharField(source="cloud_account_id", read_only=True)
    operation = OperationRefSerializer(read_only=True, allow_null=True)
    resources = serializers.SerializerMethodField()
    agent = serializers.SerializerMethodField()
    findings = FindingSerializer(many=True, read_only=True)

    class Meta:
        model = ComputePlane
        fields = [
            "id",
            "name",
            "cloud_account",
            "region",
            "vpc_cidr",
            "availability_zones",
            "kubernetes_version",
            "endpoint_access",
            "public_access_cidrs",
            "control_plane_logging",
            "nat_mode",
            "kms_key_arn",
            "status",
            "operation",
            "resources",
            "agent",
            "findings",
            "last_checked_at",
            "created_at",
            "deleted_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ResourcesSerializer)
    def get_resources(self, plane: ComputePlane) -> dict[str, Any]:
        r = plane.resources
        return {
            "vpc_id": r.get("vpc_id"),
            "subnet_ids": [*r.get("private_subnet_ids", []), *r.get("public_subnet_ids", [])],
            "eks_cluster_name": r.get("eks_cluster_name"),
            "eks_endpoint": r.get("eks_endpoint"),
            "buckets": r.get("buckets", {}),
        }

    @extend_schema_field(AgentSerializer)
    def get_agent(self, plane: ComputePlane) -> dict[str, Any]:
        return {
            "status": plane.agent_status,
            "version": plane.agent_version,
            "last_seen_at": plane.agent_last_seen_at,
        }


class ComputePlaneCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(
        r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$",
        error_messages={"invalid": "Use 2-40 lowercase letters, digits and hyphens."},
    )
    cloud_account = serializers.RegexField(r"^acct_[0-9a-z]+$")
    region = serializers.RegexField(
        r"^[a-z]{2}(-gov)?-[a-z]+-\d$", error_messages={"invalid": "Not an AWS region name."}
    )
    vpc_cidr = serializers.CharField(default="10.42.0.0/16")
    availability_zones = serializers.ChoiceField(choices=[2, 3], default=2)
    kubernetes_version = serializers.CharField(default=DEFAULT_KUBERNETES_VERSION)
    endpoint_access = serializers.ChoiceField(
        choices=EndpointAccess.choices, default=EndpointAccess.PRIVATE
    )
    public_access_cidrs = serializers.ListField(
        child=serializers.CharField(), default=list, max_length=40
    )
    control_plane_logging = serializers.ListField(
        child=serializers.ChoiceField(choices=LOG_TYPES),
        default=lambda: ["api", "audit", "authenticator"],
    )

    nat_mode = serializers.ChoiceField(
        choices=["per_az", "single"],
        required=False,
        help_text="One NAT gateway per AZ (default) or one shared by all AZs (cheaper).",
    )
    kms_key_arn = serializers.CharField(required=False, allow_blank=True, max_length=2048)


class ComputePlaneUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", required=False)
    endpoint_access = serializers.ChoiceField(choices=EndpointAccess.choices, required=False)
    public_access_cidrs = serializers.ListField(
        child=serializers.CharField(), required=False, max_length=40
    )
    control_plane_logging = serializers.ListField(
        child=serializers.ChoiceField(choices=LOG_TYPES), required=False
    )


class PlanSerializer(serializers.Serializer[Any]):
    plan = serializers.ListField(child=serializers.DictField())
