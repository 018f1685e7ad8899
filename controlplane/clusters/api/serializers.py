from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from computeplane_agent.contract import MAX_CATALOGS_PER_CLUSTER, WORKLOAD_NAMESPACE
from computeplane_agent.render.cluster import resource_prefix
from computeplane_agent.render.engines import HTTP_PORT
from controlplane.clusters.models import Cluster, Engine, ScalingEvent
from controlplane.clusters.scaling import policy_of
from controlplane.computeplanes.agentinstall import sandbox_engine_url
from controlplane.core.api.serializers import (
    OperationRefSerializer,
    StrictBooleanField,
    StrictIntegerField,
)

NAME_RE = r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$"
MAX_WORKERS = 1000
CATALOG_ID_RE = r"^cat_[0-9a-z]{1,40}$"
CACHE_ID_RE = r"^cache_[0-9a-z]{1,40}$"
MAX_CATALOGS = MAX_CATALOGS_PER_CLUSTER


class WorkersSerializer(serializers.Serializer[Any]):
    desired = StrictIntegerField()
    ready = StrictIntegerField()
    min_count = StrictIntegerField()
    max_count = StrictIntegerField()
    instance_type = serializers.CharField()
    spot = serializers.BooleanField()


class AutoscalingSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    min_count = StrictIntegerField()
    max_count = StrictIntegerField()
    target_queued = StrictIntegerField()
    target_cpu_percent = StrictIntegerField()
    scale_out_window_seconds = StrictIntegerField()
    scale_in_idle_minutes = StrictIntegerField()
    scale_out_step = StrictIntegerField()
    scale_in_step = StrictIntegerField()
    cooldown_seconds = StrictIntegerField()


class ClusterSerializer(serializers.ModelSerializer[Cluster]):
    compute_plane = serializers.CharField(source="compute_plane_id", read_only=True)
    operation = OperationRefSerializer(read_only=True, allow_null=True)
    coordinator = serializers.SerializerMethodField()
    workers = serializers.SerializerMethodField()
    endpoint = serializers.SerializerMethodField()
    catalogs = serializers.SerializerMethodField()
    cache = serializers.SerializerMethodField()
    autoscaling = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "compute_plane",
            "engine",
            "version",
            "status",
            "endpoint",
            "coordinator",
            "workers",
            "catalogs",
            "cache",
            "auto_suspend_minutes",
            "draining",
            "autoscaling",
            "schedules",
            "restart_generation",
            "node_group",
            "operation",
            "created_at",
            "deleted_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_coordinator(self, cluster: Cluster) -> dict[str, Any]:
        return {
            "instance_type": cluster.coordinator_instance_type,
            "ready": cluster.coordinator_ready,
        }

    @extend_schema_field(WorkersSerializer)
    def get_workers(self, cluster: Cluster) -> dict[str, Any]:
        return {
            "desired": cluster.workers_desired,
            "ready": cluster.workers_ready,
            "min_count": cluster.workers_min,
            "max_count": cluster.workers_max,
            "instance_type": cluster.worker_instance_type,
            "spot": cluster.spot,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_endpoint(self, cluster: Cluster) -> str | None:
        # The coordinator Service the agent renders (named by the renderer, so they agree);
        # reachable from inside the compute plane's VPC.
        if cluster.status != "running":
            return None
        # The sandbox runs a local engine per running cluster instead (docs/sandbox.md).
        local = sandbox_engine_url(cluster.compute_plane_id, cluster.id)
        if local is not None:
            return local
        service = f"{resource_prefix(cluster.id)}-coordinator"
        return f"http://{service}.{WORKLOAD_NAMESPACE}.svc:{HTTP_PORT}"

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_catalogs(self, cluster: Cluster) -> list[str]:
        # The viewset prefetches attachments; ordered by attach time.
        return [a.catalog_id for a in cluster.catalog_attachments.all()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cache(self, cluster: Cluster) -> str | None:
        return str(cluster.cache_id) if cluster.cache_id else None

    @extend_schema_field(AutoscalingSerializer)
    def get_autoscaling(self, cluster: Cluster) -> dict[str, Any]:
        return policy_of(cluster)


class CoordinatorInput(serializers.Serializer[Any]):
    instance_type = serializers.CharField(max_length=32)


class WorkersInput(serializers.Serializer[Any]):
    instance_type = serializers.CharField(max_length=32)
    count = StrictIntegerField(min_value=0, max_value=MAX_WORKERS)
    min_count = StrictIntegerField(min_value=0, max_value=MAX_WORKERS, required=False)
    max_count = StrictIntegerField(min_value=1, max_value=MAX_WORKERS, required=False)
    spot = StrictBooleanField(default=False)


class AutoscalingInput(serializers.Serializer[Any]):
    """Every field optional: a POST takes the defaults, a PATCH changes only what it names."""

    enabled = StrictBooleanField(required=False)
    min_count = StrictIntegerField(min_value=0, max_value=MAX_WORKERS, required=False)
    max_count = StrictIntegerField(min_value=1, max_value=MAX_WORKERS, required=False)
    target_queued = StrictIntegerField(min_value=0, max_value=10_000, required=False)
    target_cpu_percent = StrictIntegerField(min_value=1, max_value=100, required=False)
    scale_out_window_seconds = StrictIntegerField(min_value=1, max_value=24 * 3600, required=False)
    scale_in_idle_minutes = StrictIntegerField(min_value=1, max_value=24 * 60, required=False)
    scale_out_step = StrictIntegerField(min_value=1, max_value=MAX_WORKERS, required=False)
    scale_in_step = StrictIntegerField(min_value=1, max_value=MAX_WORKERS, required=False)
    cooldown_seconds = StrictIntegerField(min_value=1, max_value=24 * 3600, required=False)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK_RE = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


class ScheduleSerializer(serializers.Serializer[Any]):
    """A window in the organisation's time zone: ``days`` and ``[start, end)`` as ``HH:MM``."""

    days = serializers.ListField(
        child=serializers.ChoiceField(choices=WEEKDAYS), min_length=1, max_length=7
    )
    start = serializers.RegexField(CLOCK_RE, error_messages={"invalid": "Use HH:MM (00:00-23:59)."})
    end = serializers.RegexField(CLOCK_RE, error_messages={"invalid": "Use HH:MM (00:01-24:00)."})
    min_count = StrictIntegerField(min_value=0, max_value=MAX_WORKERS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] >= attrs["end"]:
            raise serializers.ValidationError({"end": ["After start."]})
        attrs["days"] = sorted(set(attrs["days"]), key=WEEKDAYS.index)
        return attrs


MAX_SCHEDULES = 20


class ScalingEventSerializer(serializers.ModelSerializer[ScalingEvent]):
    from_ = StrictIntegerField(source="from_count")
    to = StrictIntegerField(source="to_count")
    actor = serializers.SerializerMethodField()

    class Meta:
        model = ScalingEvent
        fields = ["id", "at", "from_", "to", "reason", "detail", "source", "actor"]
        read_only_fields = fields

    def get_fields(self) -> dict[str, Any]:
        # ``from`` is a Python keyword: declared as from_, served as from (API.md).
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    @extend_schema_field(serializers.DictField(child=serializers.CharField(allow_null=True)))
    def get_actor(self, event: ScalingEvent) -> dict[str, str | None]:
        if event.actor_id is not None:
            return {"type": "user", "id": str(event.actor_id)}
        if event.source == "autoscaler":
            return {"type": "agent", "id": None}
        return {"type": "system", "id": None}


class ClusterCreateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(
        NAME_RE, error_messages={"invalid": "Use 2-40 lowercase letters, digits and hyphens."}
    )
    compute_plane = serializers.RegexField(r"^cp_[0-9a-z]+$")
    engine = serializers.ChoiceField(choices=Engine.choices)
    version = serializers.CharField(required=False, allow_blank=True, max_length=32)
    coordinator = CoordinatorInput()
    workers = WorkersInput()
    catalogs = serializers.ListField(
        child=serializers.RegexField(CATALOG_ID_RE), default=list, max_length=MAX_CATALOGS
    )
    cache = serializers.RegexField(CACHE_ID_RE, required=False, allow_null=True, default=None)
    auto_suspend_minutes = StrictIntegerField(
        required=False, allow_null=True, min_value=5, max_value=7 * 24 * 60
    )
    autoscaling = AutoscalingInput(required=False)
    schedules = serializers.ListField(
        child=ScheduleSerializer(),
        required=False,
        max_length=MAX_SCHEDULES,
        help_text="Replaces the list.",
    )


class ClusterUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.RegexField(NAME_RE, required=False)
    auto_suspend_minutes = StrictIntegerField(
        required=False, allow_null=True, min_value=5, max_value=7 * 24 * 60
    )
    min_count = StrictIntegerField(min_value=0, max_value=MAX_WORKERS, required=False)
    max_count = StrictIntegerField(min_value=1, max_value=MAX_WORKERS, required=False)
    catalogs = serializers.ListField(
        child=serializers.RegexField(CATALOG_ID_RE),
        required=False,
        max_length=MAX_CATALOGS,
        help_text="The catalog ids the cluster mounts (replaces the list).",
    )
    cache = serializers.RegexField(
        CACHE_ID_RE, required=False, allow_null=True, help_text="A cache id, or null to detach."
    )
    draining = StrictBooleanField(
        required=False, help_text="false ends a drain; a drain starts with POST …/drain."
    )
    autoscaling = AutoscalingInput(required=False)
    schedules = serializers.ListField(
        child=ScheduleSerializer(),
        required=False,
        max_length=MAX_SCHEDULES,
        help_text="Replaces the list.",
    )


class ResizeSerializer(serializers.Serializer[Any]):
    workers = StrictIntegerField(min_value=0, max_value=MAX_WORKERS)
