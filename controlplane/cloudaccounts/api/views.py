"""Cloud account endpoints: thin; writes go through cloudaccounts.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.cloudaccounts import onboarding, services
from controlplane.cloudaccounts.api import serializers as s
from controlplane.cloudaccounts.models import CloudAccount
from controlplane.tenancy.viewsets import ADMIN_WRITES, OrgScopedViewSet


class CloudAccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    # The onboarding summary names the org (TenantTag): load it with the page, not per row.
    queryset = CloudAccount.objects.select_related("organization")
    serializer_class = s.CloudAccountSerializer
    required_roles = ADMIN_WRITES

    @extend_schema(
        request=s.CloudAccountCreateSerializer, responses={201: s.CloudAccountSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = s.CloudAccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.create_cloud_account(
            actor=self.actor, organization=self.organization, **body.validated_data
        )
        return Response(s.CloudAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CloudAccountUpdateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.get_object()
        body = s.CloudAccountUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data:
            account = services.rename_cloud_account(
                actor=self.actor, account=account, name=body.validated_data["name"]
            )
        return Response(s.CloudAccountSerializer(account).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_cloud_account(actor=self.actor, account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.VerifySerializer, responses={202: s.CloudAccountSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = self.get_object()
        body = s.VerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account, operation = services.start_verification(
            actor=self.actor, account=account, role_arn=body.validated_data["role_arn"]
        )
        data = s.CloudAccountSerializer(account, context={"operation": operation}).data
        return self.accepted(data, operation)

    @extend_schema(request=None, responses={200: s.CloudAccountSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-external-id")
    def rotate_external_id(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        account = services.rotate_external_id(actor=self.actor, account=self.get_object())
        return Response(s.CloudAccountSerializer(account).data)

    @extend_schema(responses={200: OpenApiResponse(description="CloudFormation template (JSON)")})
    @action(detail=True, methods=["get"], url_path="onboarding/cloudformation")
    def onboarding_cloudformation(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(onboarding.cloudformation_template(self.get_object()))

    @extend_schema(responses={200: s.TerraformOnboardingSerializer})
    @action(detail=True, methods=["get"], url_path="onboarding/terraform")
    def onboarding_terraform(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(onboarding.terraform_artifacts(self.get_object()))
