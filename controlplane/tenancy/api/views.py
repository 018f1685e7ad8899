"""Identity and tenancy endpoints: thin; every write goes through tenancy.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.core import ratelimit
from controlplane.core.roles import Role
from controlplane.tenancy import services
from controlplane.tenancy.api import serializers as s
from controlplane.tenancy.models import ApiToken, Membership, Organization
from controlplane.tenancy.viewsets import ADMIN_WRITES, OrgScopedViewSet, actor_from_request


def _user_or_refuse_token(request: Request) -> Any:
    if isinstance(request.auth, ApiToken):
        raise exceptions.PermissionDenied(
            "API tokens act inside their own organization; sign in as a user for this."
        )
    return request.user


class MeView(APIView):
    @extend_schema(responses=s.MeSerializer)
    def get(self, request: Request) -> Response:
        memberships = Membership.objects.filter(user_id=request.user.pk).select_related(
            "organization"
        )
        if isinstance(request.auth, ApiToken):
            token = request.auth
            items = [{"org": token.organization.slug, "role": token.effective_role}]
        else:
            items = [{"org": m.organization.slug, "role": m.role} for m in memberships]
        return Response({"user": s.UserSerializer(request.user).data, "memberships": items})  # type: ignore[arg-type]


class OrganizationListView(APIView):
    @extend_schema(
        operation_id="orgs_list",
        responses=inline_serializer(
            "OrganizationList",
            {
                "results": s.OrganizationSerializer(many=True),
                "next": serializers.URLField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        memberships = Membership.objects.filter(user_id=request.user.pk).select_related(
            "organization"
        )
        if isinstance(request.auth, ApiToken):
            memberships = memberships.none()
            orgs: list[Organization] = [request.auth.organization]
            roles: dict[str, str] = {request.auth.organization.pk: request.auth.effective_role}
        else:
            orgs = [m.organization for m in memberships]
            roles = {m.organization_id: m.role for m in memberships}
        data = s.OrganizationSerializer(orgs, many=True, context={"roles": roles}).data
        return Response({"results": data, "next": None})

    @extend_schema(request=s.OrganizationSerializer, responses={201: s.OrganizationSerializer})
    def post(self, request: Request) -> Response:
        user = _user_or_refuse_token(request)
        body = s.OrganizationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        org = services.create_organization(
            actor=actor_from_request(request), owner=user, **body.validated_data
        )
        data = s.OrganizationSerializer(org, context={"roles": {org.pk: Role.OWNER}}).data
        return Response(data, status=status.HTTP_201_CREATED)


class OrganizationViewSet(OrgScopedViewSet):
    """The organization named in the path itself."""

    queryset = Organization.objects.all()
    org_lookup = "pk"
    serializer_class = s.OrganizationSerializer
    required_roles = {
        "GET": Role.VIEWER,
        "HEAD": Role.VIEWER,
        "OPTIONS": Role.VIEWER,
        "PATCH": Role.ADMIN,
        "DELETE": Role.OWNER,
    }

    def _render(self) -> Response:
        context = {"roles": {self.organization.pk: self.role}}
        return Response(s.OrganizationSerializer(self.organization, context=context).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._render()

    @extend_schema(request=s.OrganizationUpdateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.OrganizationUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.update_organization(
            actor=self.actor,
            organization=self.organization,
            acting_role=self.role,
            **body.validated_data,
        )
        return self._render()

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_organization(actor=self.actor, organization=self.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberViewSet(mixins.ListModelMixin, OrgScopedViewSet):
    queryset = Membership.objects.select_related("user")
    serializer_class = s.MemberSerializer
    lookup_field = "user_id"
    lookup_url_kwarg = "usr_id"
    required_roles = ADMIN_WRITES

    @extend_schema(request=s.MemberCreateSerializer, responses={201: s.MemberSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.MemberCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.add_member(
            actor=self.actor,
            organization=self.organization,
            email=body.validated_data["email"],
            role=Role(body.validated_data["role"]),
            acting_role=self.role,
        )
        return Response(s.MemberSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberRoleChangeSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        body = s.MemberUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        capped = services.change_member_role(
            actor=self.actor,
            membership=membership,
            role=Role(body.validated_data["role"]),
            acting_role=self.role,
        )
        data = dict(s.MemberSerializer(membership).data)
        data["tokens_capped"] = [
            {
                "id": c.token.pk,
                "name": c.token.name,
                "prefix": c.token.prefix,
                "from": c.was,
                "to": c.token.role,
            }
            for c in capped
        ]
        return Response(data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        membership = self.get_object()
        services.remove_member(
            actor=self.actor,
            membership=membership,
            acting_role=self.role,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = ApiToken.objects.select_related("created_by")
    serializer_class = s.TokenSerializer
    required_roles = {
        "GET": Role.ADMIN,
        "HEAD": Role.ADMIN,
        "OPTIONS": Role.ADMIN,
        "POST": Role.ADMIN,
        "DELETE": Role.ADMIN,
    }

    @extend_schema(
        request=s.TokenCreateSerializer,
        responses={
            201: s.IssuedTokenSerializer,
            429: OpenApiResponse(
                description="Too many tokens created by this user; Retry-After says when to "
                "try again (problem+json)."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Every attempt counts, by the user behind the request (a token acts for its creator).
        ratelimit.check(ratelimit.TOKEN_CREATE, f"user:{request.user.pk}")
        body = s.TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = services.create_token(
            actor=self.actor,
            organization=self.organization,
            created_by=request.user,  # type: ignore[arg-type]
            name=body.validated_data["name"],
            role=Role(body.validated_data["role"]),
            acting_role=self.role,
            expires_in_days=body.validated_data["expires_in_days"],
            acting_token=request.auth if isinstance(request.auth, ApiToken) else None,
        )
        data = dict(s.TokenSerializer(issued.token).data)
        data["token"] = issued.secret
        return Response(data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token = self.get_object()
        services.revoke_token(actor=self.actor, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
