"""Data access rule sets: thin; writes go through access.services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.access import services
from controlplane.access.api import serializers as s
from controlplane.access.models import RuleSet
from controlplane.core.roles import Role
from controlplane.tenancy.viewsets import ADMIN_WRITES, OrgScopedViewSet


class RuleSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Who may read or change which tables, per cluster: admins write, everyone reads."""

    queryset = RuleSet.objects.prefetch_related("attachments")
    serializer_class = s.RuleSetSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_roles = ADMIN_WRITES
    # A dry run reads: any member may ask whether a user may do something.
    action_roles = {"check": Role.VIEWER}

    def safely_get_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(deleted_at__isnull=True).order_by("name")

    def _render(self, rule_set: RuleSet, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=rule_set.pk)
        return Response(s.RuleSetSerializer(fresh).data, status=code)

    @extend_schema(request=s.RuleSetInput, responses={201: s.RuleSetSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.RuleSetInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        rule_set = services.create_rule_set(
            actor=self.actor,
            organization=self.organization,
            name=data["name"],
            rules=data["rules"],
            clusters=data["clusters"],
        )
        return self._render(rule_set, status.HTTP_201_CREATED)

    @extend_schema(request=s.RuleSetUpdateInput, responses={200: s.RuleSetSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule_set = self.get_object()
        body = s.RuleSetUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        rule_set = services.update_rule_set(
            actor=self.actor, rule_set=rule_set, changes=dict(body.validated_data)
        )
        return self._render(rule_set)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_rule_set(actor=self.actor, rule_set=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.CheckInput,
        responses={200: s.CheckAnswer},
        description="Dry run: may this user (with these groups) do this on this table, and "
        "which rule decides. The same evaluation the engines' rendered rules make.",
    )
    @action(detail=True, methods=["post"])
    def check(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule_set = self.get_object()
        body = s.CheckInput(data=request.data)
        body.is_valid(raise_exception=True)
        decision = services.dry_run(rule_set, **body.validated_data)
        return Response(s.CheckAnswer(decision).data)
