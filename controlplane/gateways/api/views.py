"""Gateway endpoints: thin; writes go through gateways.services.

Everything sits under ``compute-planes/{cp_id}/gateway`` except the org-wide query history.
The plane is resolved inside the caller's organization, so another organization's plane (or
a deleted one) answers 404 exactly like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from computeplane_agent import contract
from computeplane_agent.gateway.routing import RequestFacts, route
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.pagination import CursorPagination
from controlplane.core.roles import Role
from controlplane.gateways import desired, observed, services
from controlplane.gateways.api import serializers as s
from controlplane.gateways.models import Gateway, QueryRecord, RoutingGroup, RoutingRule
from controlplane.tenancy.viewsets import ADMIN_WRITES, OrgScopedViewSet


class PlaneScopedMixin(OrgScopedViewSet):
    """Views under ``compute-planes/{cp_id}/…``: the plane must be the caller's org's."""

    _scoping_base = True

    def plane(self) -> ComputePlane:
        cached: ComputePlane | None = getattr(self, "_plane", None)
        if cached is not None:
            return cached
        plane = ComputePlane.objects.filter(
            organization=self.organization, pk=self.kwargs["cp_id"], deleted_at__isnull=True
        ).first()
        if plane is None:
            raise exceptions.NotFound("No such compute plane.")
        self._plane: ComputePlane = plane
        return plane

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(compute_plane=self.plane())


def gateway_document(plane: ComputePlane) -> dict[str, Any]:
    gateway = desired.plane_gateway(plane)
    reported = observed.reported_gateway(plane)
    groups = (
        RoutingGroup.objects.filter(compute_plane_id=plane.pk)
        .prefetch_related("clusters")
        .order_by("name")
    )
    rules = RoutingRule.objects.filter(compute_plane_id=plane.pk).order_by("priority", "name")
    return {
        "compute_plane": plane.pk,
        "endpoint": reported.get("endpoint") if gateway.enabled else None,
        "enabled": gateway.enabled,
        "replicas": gateway.replicas,
        "replicas_ready": int(reported.get("replicas_ready") or 0),
        "status": observed.gateway_status(gateway.enabled, gateway.replicas, reported),
        "config_version": reported.get("config_version"),
        "routing_groups": s.RoutingGroupSerializer(groups, many=True).data,
        "rules": s.RoutingRuleSerializer(rules, many=True).data,
        "default_group": gateway.default_group_id,
        "query_text_retention": {
            "enabled": gateway.query_text_enabled,
            "days": gateway.query_text_days,
        },
        "health": contract.GatewayHealthSpec.model_validate(gateway.health).model_dump(),
        "wake": contract.GatewayWakeSpec.model_validate(gateway.wake).model_dump(),
    }


class GatewayViewSet(PlaneScopedMixin):
    """The plane's gateway: settings (admins), and the routing dry run (anyone in the org)."""

    queryset = Gateway.objects.all()
    serializer_class = s.GatewaySerializer
    required_roles = ADMIN_WRITES
    action_roles = {"route": Role.VIEWER}

    @extend_schema(responses={200: s.GatewaySerializer})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(gateway_document(self.plane()))

    @extend_schema(request=s.GatewayUpdateSerializer, responses={200: s.GatewaySerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.GatewayUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plane = self.plane()
        services.update_gateway(actor=self.actor, plane=plane, changes=dict(body.validated_data))
        return Response(gateway_document(plane))

    @extend_schema(
        request=s.RouteRequestSerializer,
        responses={200: s.RouteDecisionSerializer},
        parameters=[OpenApiParameter("dry_run", bool, required=True)],
    )
    @action(detail=False, methods=["post"])
    def route(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Which cluster this request would go to, and why: the gateway's own routing function
        (``computeplane_agent.gateway.routing.route``) over the plane's routing as published,
        judging clusters by their state (the gateway adds its health probes)."""
        if request.query_params.get("dry_run") != "true":
            raise exceptions.ValidationError(
                {"dry_run": ["Only a dry run is served here: add ?dry_run=true."]}
            )
        body = s.RouteRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        facts = RequestFacts(
            user=data.get("user"),
            source=data.get("source"),
            client_tags=tuple(data.get("client_tags") or ()),
            headers={k.lower(): v for k, v in (data.get("headers") or {}).items()},
            catalog=data.get("catalog"),
            schema=data.get("schema"),
        )
        plane = self.plane()
        clusters = desired.live_clusters(plane)
        decision = route(
            desired.gateway_config(plane, clusters), facts, desired.dry_run_health(clusters)
        )
        return Response(
            {
                "group": decision.group,
                "cluster": decision.cluster_id,
                "wake": decision.wake,
                "reasons": decision.reasons,
            }
        )


class RoutingGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlaneScopedMixin):
    queryset = RoutingGroup.objects.prefetch_related("clusters")
    serializer_class = s.RoutingGroupSerializer
    pagination_class = type("NamePagination", (CursorPagination,), {"ordering": "name"})

    @extend_schema(
        request=s.RoutingGroupCreateSerializer, responses={201: s.RoutingGroupSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.RoutingGroupCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        group = services.create_group(
            actor=self.actor,
            plane=self.plane(),
            request=services.GroupRequest(
                name=data["name"],
                clusters=list(data["clusters"]),
                fallback=data.get("fallback"),
                prefer_cache=data.get("prefer_cache", False),
            ),
        )
        return Response(s.RoutingGroupSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.RoutingGroupUpdateSerializer, responses={200: s.RoutingGroupSerializer}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        group = self.get_object()
        body = s.RoutingGroupUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        group = services.update_group(
            actor=self.actor,
            group=group,
            request=services.GroupRequest(
                name=data.get("name"),
                clusters=list(data["clusters"]) if "clusters" in data else None,
                fallback=data.get("fallback"),
                fallback_given="fallback" in data,
                prefer_cache=data.get("prefer_cache"),
            ),
        )
        return Response(s.RoutingGroupSerializer(group).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_group(actor=self.actor, group=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoutingRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, PlaneScopedMixin):
    """Rules in the order they apply: lowest priority first, ties by name."""

    queryset = RoutingRule.objects.all()
    serializer_class = s.RoutingRuleSerializer
    pagination_class = type(
        "PriorityPagination", (CursorPagination,), {"ordering": ("priority", "name")}
    )

    def _request(self, data: dict[str, Any]) -> services.RuleRequest:
        return services.RuleRequest(
            name=data.get("name"),
            priority=data.get("priority"),
            group=data.get("group"),
            match=data.get("match"),
        )

    @extend_schema(request=s.RoutingRuleCreateSerializer, responses={201: s.RoutingRuleSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.RoutingRuleCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = services.create_rule(
            actor=self.actor, plane=self.plane(), request=self._request(body.validated_data)
        )
        return Response(s.RoutingRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RoutingRuleUpdateSerializer, responses={200: s.RoutingRuleSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        body = s.RoutingRuleUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = services.update_rule(
            actor=self.actor, rule=rule, request=self._request(body.validated_data)
        )
        return Response(s.RoutingRuleSerializer(rule).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_rule(actor=self.actor, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


QUERY_STATES = {"FINISHED", "FAILED", "CANCELED"}


class QueryRecordViewSet(mixins.ListModelMixin, OrgScopedViewSet):
    """The organization's query history (metadata; text only where a plane keeps it)."""

    queryset = QueryRecord.objects.all()
    serializer_class = s.QueryRecordSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("cluster", str),
            OpenApiParameter("user", str),
            OpenApiParameter("state", str, enum=sorted(QUERY_STATES)),
            OpenApiParameter("since", str, description="ISO 8601; queries started at or after"),
            OpenApiParameter("compute_plane", str),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        if cluster := params.get("cluster"):
            queryset = queryset.filter(cluster_id=cluster)
        if plane := params.get("compute_plane"):
            queryset = queryset.filter(compute_plane_id=plane)
        if user := params.get("user"):
            queryset = queryset.filter(user=user)
        if state := params.get("state"):
            if state.upper() not in QUERY_STATES:
                errors["state"] = [f"One of {', '.join(sorted(QUERY_STATES))}."]
            queryset = queryset.filter(state=state.upper())
        if since := params.get("since"):
            at = parse_datetime(since)
            if at is None or at.tzinfo is None:
                errors["since"] = ["An ISO 8601 date and time with a zone, e.g. 2026-12-01T00:00Z."]
            else:
                queryset = queryset.filter(started_at__gte=at)
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset
