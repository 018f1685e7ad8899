"""Cache endpoints: thin; writes go through caching.services."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.caching import services
from controlplane.caching.api import serializers as s
from controlplane.caching.models import Cache
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.services import live_compute_plane
from controlplane.core.models import Operation
from controlplane.tenancy.viewsets import OrgScopedViewSet

# The clusters reading through each cache, fetched for a whole page in one query.
LIVE_CLUSTERS = Prefetch(
    "clusters",
    queryset=Cluster.objects.filter(deleted_at__isnull=True).only("id", "cache_id").order_by("id"),
    to_attr="live_clusters",
)


class CacheViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Cache.objects.select_related("operation").prefetch_related(LIVE_CLUSTERS)
    serializer_class = s.CacheSerializer

    def _accepted(self, cache: Cache, operation: Operation) -> Response:
        cache.operation = operation
        return self.accepted(s.CacheSerializer(cache).data, operation)

    @extend_schema(request=s.CacheCreateSerializer, responses={202: s.CacheSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.CacheCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plane = live_compute_plane(self.organization, data["compute_plane"])
        cache, operation = services.create_cache(
            actor=self.actor,
            organization=self.organization,
            request=services.CacheRequest(
                name=data["name"],
                compute_plane=plane,
                version=data.get("version") or "",
                workers=data["workers"],
                medium=data["medium"],
                worker_instance_type=data.get("worker_instance_type") or "",
                size_gb_per_worker=data["size_gb_per_worker"],
                mounts=[dict(m) for m in data["mounts"]],
                policies=list(data["policies"]),
            ),
        )
        return self._accepted(cache, operation)

    @extend_schema(
        request=s.CacheUpdateSerializer, responses={200: s.CacheSerializer, 202: s.CacheSerializer}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cache = self.get_object()
        body = s.CacheUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        if "mounts" in changes:
            changes["mounts"] = [dict(m) for m in changes["mounts"]]
        cache, operation = services.update_cache(actor=self.actor, cache=cache, changes=changes)
        if operation is None:
            return Response(s.CacheSerializer(cache).data)
        return self._accepted(cache, operation)

    @extend_schema(request=None, responses={202: s.CacheSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cache, operation = services.delete_cache(actor=self.actor, cache=self.get_object())
        return self._accepted(cache, operation)
