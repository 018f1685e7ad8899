"""Single sign-on settings of an organization: owners only, every write through sso.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.core.roles import Role
from controlplane.sso import scim, services
from controlplane.sso.api import serializers as s
from controlplane.sso.models import ScimToken, SsoConnection, SsoDomain, SsoGroupMapping
from controlplane.tenancy.viewsets import OrgScopedViewSet

# Who signs in to an organization is the owner's decision, reading included: the settings
# name the provider, its client and the break-glass account.
OWNER_ONLY: dict[str, Role] = dict.fromkeys(
    ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"), Role.OWNER
)


class SsoConnectionViewSet(OrgScopedViewSet):
    """``/orgs/{org}/sso``: the organization's one OpenID provider (PUT creates or replaces)."""

    queryset = SsoConnection.objects.select_related("organization")
    serializer_class = s.SsoConnectionSerializer
    required_roles = OWNER_ONLY
    # DRF's OPTIONS metadata looks the object up by a ``pk`` this singleton URL does not have
    # (a 500); OPTIONS answers 405 here instead. The schema describes the resource.
    metadata_class = None

    def _connection(self) -> SsoConnection:
        connection: SsoConnection | None = self.get_queryset().first()
        if connection is None:
            raise NotFound("This organization has no single sign-on configured.")
        return connection

    def _render(self, connection: SsoConnection, code: int = status.HTTP_200_OK) -> Response:
        connection.organization.refresh_from_db()
        data = s.SsoConnectionSerializer(connection, context={"request": self.request}).data
        return Response(data, status=code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._render(self._connection())

    def _write(self, request: Request) -> Response:
        # Fields left out keep their value (or their default, on create); the service says
        # which ones a new connection cannot do without.
        existed = self.get_queryset().exists()
        body = s.SsoConnectionInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        policy = {k: data.pop(k) for k in s.SsoConnectionInputSerializer.POLICY_FIELDS if k in data}
        connection = services.configure(
            actor=self.actor, organization=self.organization, changes=data, policy=policy
        )
        return self._render(connection, status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(request=s.SsoConnectionInputSerializer, responses=s.SsoConnectionSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._write(request)

    @extend_schema(request=s.SsoConnectionInputSerializer, responses=s.SsoConnectionSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._connection()
        return self._write(request)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_connection(actor=self.actor, connection=self._connection())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SsoDomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = SsoDomain.objects.all().order_by("id")
    serializer_class = s.SsoDomainSerializer
    lookup_url_kwarg = "dom_id"
    required_roles = OWNER_ONLY

    @extend_schema(request=s.SsoDomainCreateSerializer, responses={201: s.SsoDomainSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.SsoDomainCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.add_domain(
            actor=self.actor, organization=self.organization, domain=body.validated_data["domain"]
        )
        return Response(s.SsoDomainSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.SsoDomainSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        row = services.verify_domain(actor=self.actor, domain=self.get_object())
        return Response(s.SsoDomainSerializer(row).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.remove_domain(actor=self.actor, domain=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SsoGroupMappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = SsoGroupMapping.objects.all().order_by("id")
    serializer_class = s.SsoGroupMappingSerializer
    lookup_url_kwarg = "gmap_id"
    required_roles = OWNER_ONLY

    @extend_schema(
        request=s.SsoGroupMappingSerializer, responses={201: s.SsoGroupMappingSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.SsoGroupMappingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = services.add_group_mapping(
            actor=self.actor,
            organization=self.organization,
            group=body.validated_data["group"],
            role=Role(body.validated_data["role"]),
        )
        return Response(s.SsoGroupMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SsoGroupMappingUpdateSerializer, responses=s.SsoGroupMappingSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        mapping = self.get_object()
        body = s.SsoGroupMappingUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mapping = services.change_group_mapping(
            actor=self.actor, mapping=mapping, role=Role(body.validated_data["role"])
        )
        return Response(s.SsoGroupMappingSerializer(mapping).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.remove_group_mapping(actor=self.actor, mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScimTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """Bearer tokens for the organization's provisioning client at ``/scim/v2``."""

    queryset = ScimToken.objects.all().order_by("id")
    serializer_class = s.ScimTokenSerializer
    lookup_url_kwarg = "scim_id"
    required_roles = OWNER_ONLY

    @extend_schema(request=s.ScimTokenSerializer, responses={201: s.ScimTokenSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.ScimTokenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, secret = scim.issue_token(
            actor=self.actor, organization=self.organization, name=body.validated_data["name"]
        )
        data = dict(s.ScimTokenSerializer(token).data)
        data["token"] = secret  # shown once
        data["base_url"] = request.build_absolute_uri("/scim/v2")
        return Response(data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        scim.revoke_token(actor=self.actor, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
