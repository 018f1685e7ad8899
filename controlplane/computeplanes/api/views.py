"""Compute plane endpoints: thin; writes go through computeplanes.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.computeplanes import services
from controlplane.computeplanes.api import serializers as s
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.errors import NotFound
from controlplane.tenancy.viewsets import ADMIN_WRITES, OrgScopedViewSet


class ComputePlaneViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = ComputePlane.objects.select_related("operation")
    serializer_class = s.ComputePlaneSerializer
    required_roles = ADMIN_WRITES

    def _accepted(self, plane: ComputePlane, operation: Any) -> Response:
        plane.operation = operation
        return self.accepted(s.ComputePlaneSerializer(plane).data, operation)

    def _request(self, body: dict[str, Any]) -> services.ComputePlaneRequest:
        account = CloudAccount.objects.filter(
            organization=self.organization, pk=body["cloud_account"]
        ).first()
        if account is None:
            raise NotFound(
                "No such cloud account.",
                errors={"cloud_account": [f"No cloud account {body['cloud_account']} here."]},
            )
        return services.ComputePlaneRequest(**{**body, "cloud_account": account})

    @extend_schema(
        request=s.ComputePlaneCreateSerializer,
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, required=False)],
        responses={202: s.ComputePlaneSerializer, 200: s.PlanSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.ComputePlaneCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plane_request = self._request(dict(body.validated_data))
        if request.query_params.get("dry_run", "").lower() in ("1", "true", "yes"):
            from controlplane.computeplanes.planning import plan_compute_plane

            actions = plan_compute_plane(organization=self.organization, request=plane_request)
            return Response({"plan": actions})
        plane, operation = services.create_compute_plane(
            actor=self.actor, organization=self.organization, request=plane_request
        )
        return self._accepted(plane, operation)

    @extend_schema(request=s.ComputePlaneUpdateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plane = self.get_object()
        body = s.ComputePlaneUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plane, operation = services.update_compute_plane(
            actor=self.actor, plane=plane, changes=dict(body.validated_data)
        )
        if operation is not None:
            return self._accepted(plane, operation)
        return Response(s.ComputePlaneSerializer(plane).data)

    @extend_schema(request=None, responses={202: s.ComputePlaneSerializer})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plane, operation = services.delete_compute_plane(actor=self.actor, plane=self.get_object())
        return self._accepted(plane, operation)

    @extend_schema(request=None, responses={202: s.ComputePlaneSerializer})
    @action(detail=True, methods=["post"])
    def repair(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Run the reconcilers again after drift (they create what is missing)."""
        plane, operation = services.repair_compute_plane(actor=self.actor, plane=self.get_object())
        return self._accepted(plane, operation)
