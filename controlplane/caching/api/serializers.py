from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.caching.models import Cache
from controlplane.caching.validation import policies_as_list
from controlplane.core.api.serializers import OperationRefSerializer, StrictIntegerField

NAME_RE = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"


class CacheWorkersSerializer(serializers.Serializer[Any]):
    desired = StrictIntegerField()
    ready = StrictIntegerField()


class CacheUsageSerializer(serializers.Serializer[Any]):
    bytes_used = StrictIntegerField()
    bytes_capacity = StrictIntegerField()
    hit_ratio = serializers.FloatField(allow_null=True)
    observed_at = serializers.DateTimeField(allow_null=True)


class CacheMountSerializer(serializers.Serializer[Any]):
    path = serializers.CharField(max_length=1024)
    uri = serializers.CharField(max_length=1024)


class CachePolicySerializer(serializers.Serializer[Any]):
    """One policy: ``{"type": "preload", "path", "schedule"?}``, ``{"type": "pin", "path"}``,
    ``{"type": "ttl", "path", "seconds"}`` or ``{"type": "write_back"}``."""

    type = serializers.ChoiceField(choices=["preload", "pin", "ttl", "write_back"])
    path = serializers.CharField(required=False)
    schedule = serializers.CharField(required=False)
    seconds = StrictIntegerField(required=False)


class CacheSerializer(serializers.ModelSerializer[Cache]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    operation = OperationRefSerializer(read_only=True, allow_null=True)
    workers = serializers.SerializerMethodField()
    master = serializers.SerializerMethodField()
    mounts = CacheMountSerializer(many=True, read_only=True)
    policies = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    clusters = serializers.SerializerMethodField()

    class Meta:
        model = Cache
        fields = [
            "id",
            "name",
            "compute_plane",
            "version",
            "status",
            "workers",
            "master",
            "worker_instance_type",
            "medium",
            "size_gb_per_worker",
            "mounts",
            "policies",
            "usage",
            "clusters",
            "node_group",
            "operation",
            "created_at",
            "deleted_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CacheWorkersSerializer)
    def get_workers(self, cache: Cache) -> dict[str, int]:
        return {"desired": cache.workers, "ready": cache.workers_ready}

    @extend_schema_field(serializers.DictField(child=serializers.BooleanField()))
    def get_master(self, cache: Cache) -> dict[str, bool]:
        return {"ready": cache.master_ready}

    @extend_schema_field(CachePolicySerializer(many=True))
    def get_policies(self, cache: Cache) -> list[dict[str, Any]]:
        return policies_as_list(cache.policies)

    @extend_schema_field(CacheUsageSerializer)
    def get_usage(self, cache: Cache) -> dict[str, Any]:
        return {
            "bytes_used": cache.bytes_used,
            "bytes_capacity": cache.bytes_capacity,
            "hit_ratio": cache.hit_ratio,
            "observed_at": (
                serializers.DateTimeField().to_representation(cache.observed_at)
                if cache.observed_at
                else None
            ),
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_clusters(self, cache: Cache) -> list[str]:
        # Lists prefetch the live clusters (views.py); a single cache asks once.
        prefetched = getattr(cache, "live_clusters", None)
        if prefetched is not None:
            return [c.id for c in prefetched]
        return list(
            cache.clusters.filter(deleted_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)
        )


class CacheCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(
        NAME_RE, error_messages={"invalid": "Use 2-40 lowercase letters, digits and hyphens."}
    )
    compute_plane = serializers.RegexField(r"^cp_[0-9a-z]+$")
    version = serializers.CharField(required=False, allow_blank=True, max_length=32)
    workers = StrictIntegerField()
    # Checked by the services (422 with the allowed values), like the sizes that depend on it.
    medium = serializers.CharField(max_length=16)
    worker_instance_type = serializers.CharField(required=False, allow_blank=True, max_length=32)
    size_gb_per_worker = StrictIntegerField()
    mounts = CacheMountSerializer(many=True)
    policies = serializers.ListField(child=serializers.DictField(), default=list, max_length=1000)


class CacheUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(NAME_RE, required=False)
    version = serializers.CharField(required=False, max_length=32)
    workers = StrictIntegerField(required=False)
    size_gb_per_worker = StrictIntegerField(required=False)
    mounts = CacheMountSerializer(many=True, required=False)
    policies = serializers.ListField(child=serializers.DictField(), required=False, max_length=1000)
    # Fixed for a cache's life; accepted here so the services answer 422 with the reason.
    medium = serializers.CharField(required=False)
    worker_instance_type = serializers.CharField(required=False)
    compute_plane = serializers.CharField(required=False)
