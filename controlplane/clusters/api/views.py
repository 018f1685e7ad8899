"""Cluster endpoints: thin; writes go through clusters.services."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.catalogs.models import CatalogAttachment
from controlplane.clusters import services
from controlplane.clusters.api import serializers as s
from controlplane.clusters.models import Cluster, ScalingEvent
from controlplane.computeplanes.services import live_compute_plane
from controlplane.core.models import Operation
from controlplane.tenancy.viewsets import OrgScopedViewSet


class ClusterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Cluster.objects.select_related("operation").prefetch_related(
        Prefetch("catalog_attachments", queryset=CatalogAttachment.objects.order_by("id"))
    )
    serializer_class = s.ClusterSerializer

    def _accepted(self, cluster: Cluster, operation: Operation) -> Response:
        cluster.operation = operation
        return self.accepted(s.ClusterSerializer(cluster).data, operation)

    @extend_schema(request=s.ClusterCreateSerializer, responses={202: s.ClusterSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.ClusterCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plane = live_compute_plane(self.organization, data["compute_plane"])
        workers = data["workers"]
        cluster, operation = services.create_cluster(
            actor=self.actor,
            organization=self.organization,
            request=services.ClusterRequest(
                name=data["name"],
                compute_plane=plane,
                engine=data["engine"],
                version=data.get("version") or "",
                coordinator_instance_type=data["coordinator"]["instance_type"],
                worker_instance_type=workers["instance_type"],
                workers=workers["count"],
                workers_min=workers.get("min_count"),
                workers_max=workers.get("max_count"),
                spot=workers["spot"],
                auto_suspend_minutes=data.get("auto_suspend_minutes"),
                catalog_ids=tuple(data["catalogs"]),
                cache_id=data.get("cache"),
                autoscaling=data.get("autoscaling"),
                schedules=tuple(data.get("schedules", ())),
            ),
        )
        return self._accepted(cluster, operation)

    @extend_schema(request=s.ClusterUpdateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cluster = self.get_object()
        body = s.ClusterUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        renames = {
            "min_count": "workers_min",
            "max_count": "workers_max",
            "catalogs": "catalog_ids",
            "cache": "cache_id",
        }
        changes = {renames.get(k, k): v for k, v in body.validated_data.items()}
        cluster = services.update_cluster(actor=self.actor, cluster=cluster, changes=changes)
        return Response(s.ClusterSerializer(cluster).data)

    @extend_schema(request=None, responses={202: s.ClusterSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cluster, operation = services.delete_cluster(actor=self.actor, cluster=self.get_object())
        return self._accepted(cluster, operation)

    @extend_schema(
        request=s.ResizeSerializer, responses={200: s.ClusterSerializer, 202: s.ClusterSerializer}
    )
    @action(detail=True, methods=["post"])
    def resize(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cluster = self.get_object()
        body = s.ResizeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        cluster, operation = services.resize_cluster(
            actor=self.actor, cluster=cluster, workers=body.validated_data["workers"]
        )
        if operation is None:  # already that size: nothing to do
            return Response(s.ClusterSerializer(cluster).data)
        return self._accepted(cluster, operation)

    @extend_schema(request=None, responses={202: s.ClusterSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._accepted(*services.stop_cluster(actor=self.actor, cluster=self.get_object()))

    @extend_schema(request=None, responses={202: s.ClusterSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._accepted(*services.start_cluster(actor=self.actor, cluster=self.get_object()))

    @extend_schema(request=None, responses={202: s.ClusterSerializer})
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """New queries go elsewhere, running ones finish; the operation ends once the gateway
        reports the cluster empty."""
        return self._accepted(*services.drain_cluster(actor=self.actor, cluster=self.get_object()))

    @extend_schema(request=None, responses={202: s.ClusterSerializer})
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._accepted(
            *services.restart_cluster(actor=self.actor, cluster=self.get_object())
        )

    @extend_schema(request=None, responses={200: s.ScalingEventSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="scaling-events")
    def scaling_events(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Every change of the worker count, newest first: who or what decided it, and why."""
        cluster = self.get_object()
        events = ScalingEvent.objects.filter(cluster=cluster, organization=self.organization)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(s.ScalingEventSerializer(page, many=True).data)
