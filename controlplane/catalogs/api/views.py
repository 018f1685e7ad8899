"""Catalog, metastore and connector endpoints: thin; writes go through catalogs.services."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from computeplane_agent.connectors import connector_schema
from controlplane.catalogs import services
from controlplane.catalogs.api import serializers as s
from controlplane.catalogs.models import Catalog, CatalogAttachment, Metastore
from controlplane.computeplanes.services import live_compute_plane
from controlplane.core.errors import NotFound
from controlplane.tenancy.viewsets import OrgScopedViewSet


class ConnectorsView(APIView):
    """The connector registry (any signed-in caller; it holds no tenant data)."""

    pagination_class = None

    @extend_schema(
        responses={200: s.ConnectorSerializer(many=True)},
        description="Connector types with, per engine (PrestoDB, Trino), their property names, "
        "types, defaults, which are required and which are credentials.",
    )
    def get(self, request: Request) -> Response:
        return Response(connector_schema())


class CatalogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Catalog.objects.prefetch_related(
        Prefetch(
            "attachments",
            queryset=CatalogAttachment.objects.filter(services.LIVE_CLUSTER).order_by("cluster_id"),
            to_attr="live_attachments",
        )
    )
    serializer_class = s.CatalogSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(deleted_at__isnull=True)

    def _metastore(self, metastore_id: str | None) -> Metastore | None:
        if metastore_id is None:
            return None
        # Another organization's metastore answers exactly like a missing one.
        metastore = Metastore.objects.filter(
            organization=self.organization, pk=metastore_id, deleted_at__isnull=True
        ).first()
        if metastore is None:
            raise NotFound(
                "No such metastore.", errors={"metastore": [f"No metastore {metastore_id} here."]}
            )
        return metastore

    def _render(self, catalog: Catalog, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=catalog.pk)
        return Response(s.CatalogSerializer(fresh).data, status=code)

    @extend_schema(request=s.CatalogInput, responses={201: s.CatalogSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.CatalogInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        catalog = services.create_catalog(
            actor=self.actor,
            organization=self.organization,
            request=services.CatalogRequest(
                name=data["name"],
                connector=data["connector"],
                metastore=self._metastore(data["metastore"]),
                properties=data["properties"],
                secrets=data["secrets"],
            ),
        )
        return self._render(catalog, status.HTTP_201_CREATED)

    @extend_schema(request=s.CatalogUpdateInput, responses={200: s.CatalogSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        catalog = self.get_object()
        body = s.CatalogUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        if "metastore" in changes:
            changes["metastore"] = self._metastore(changes["metastore"])
        catalog = services.update_catalog(actor=self.actor, catalog=catalog, changes=changes)
        return self._render(catalog)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_catalog(actor=self.actor, catalog=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetastoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Metastore.objects.select_related("operation")
    serializer_class = s.MetastoreSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    # A deleted metastore stays listed with status "deleted", like planes, clusters and caches
    # (docs/api.md).

    def _answer(self, metastore: Metastore, operation: Any, code: int) -> Response:
        if operation is not None:
            metastore.operation = operation
            return self.accepted(s.MetastoreSerializer(metastore).data, operation)
        return Response(s.MetastoreSerializer(metastore).data, status=code)

    @extend_schema(
        request=s.MetastoreInput,
        responses={201: s.MetastoreSerializer, 202: s.MetastoreSerializer},
        description="hive and glue metastores are ready at once (201); a managed one creates "
        "a database in your account and answers 202 with its operation.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.MetastoreInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plane = live_compute_plane(self.organization, data["compute_plane"])
        metastore, operation = services.create_metastore(
            actor=self.actor,
            organization=self.organization,
            request=services.MetastoreRequest(**{**data, "compute_plane": plane}),
        )
        return self._answer(metastore, operation, status.HTTP_201_CREATED)

    @extend_schema(request=s.MetastoreUpdateInput, responses={200: s.MetastoreSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        metastore = self.get_object()
        body = s.MetastoreUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        metastore = services.update_metastore(
            actor=self.actor, metastore=metastore, changes=dict(body.validated_data)
        )
        return Response(s.MetastoreSerializer(metastore).data)

    @extend_schema(request=None, responses={202: s.MetastoreSerializer, 204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        metastore, operation = services.delete_metastore(
            actor=self.actor, metastore=self.get_object()
        )
        if operation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._answer(metastore, operation, status.HTTP_202_ACCEPTED)
