from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.cloudaccounts.models import AWS_ACCOUNT_ID_VALIDATOR, CloudAccount
from controlplane.core.api.serializers import OperationRefSerializer

READ_ONLY_INPUTS = (
    "external_id",
    "status",
    "checks",
    "findings",
    "last_checked_at",
    "verified_at",
    "id",
)


class RefuseReadOnlyInputs(serializers.Serializer[Any]):
    """Refuses, rather than silently drops, fields that Lakeplane alone sets."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            sent = [name for name in READ_ONLY_INPUTS if name in data]
            if sent:
                raise serializers.ValidationError(
                    {name: ["This field is set by Lakeplane and is read-only."] for name in sent}
                )
        return super().to_internal_value(data)


class CheckSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class FindingSerializer(serializers.Serializer[Any]):
    """What a drift check found (accounts and compute planes): ``{check, detail}``."""

    check = serializers.CharField()
    detail = serializers.CharField()


class TerraformOnboardingSerializer(serializers.Serializer[Any]):
    """``GET …/onboarding/terraform``: the customer-role module's inputs, as tfvars and as a
    module call (the console shows the module call with a copy button)."""

    module_source = serializers.CharField()
    variables = serializers.DictField(child=serializers.CharField())
    tfvars = serializers.CharField()
    module_call = serializers.CharField()


class OnboardingSerializer(serializers.Serializer[Any]):
    quick_create_url = serializers.URLField()
    trust_policy = serializers.DictField()
    permissions_policy = serializers.DictField()


class CloudAccountSerializer(serializers.ModelSerializer[CloudAccount]):
    checks = CheckSerializer(many=True, read_only=True)
    findings = FindingSerializer(many=True, read_only=True)
    onboarding = serializers.SerializerMethodField()
    operation = serializers.SerializerMethodField()

    class Meta:
        model = CloudAccount
        fields = [
            "id",
            "name",
            "aws_account_id",
            "external_id",
            "role_arn",
            "status",
            "checks",
            "onboarding",
            "operation",
            "findings",
            "last_checked_at",
            "verified_at",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OnboardingSerializer)
    def get_onboarding(self, account: CloudAccount) -> dict[str, Any]:
        from controlplane.cloudaccounts.onboarding import onboarding_summary

        return onboarding_summary(account)

    @extend_schema_field(OperationRefSerializer(allow_null=True))
    def get_operation(self, account: CloudAccount) -> dict[str, Any] | None:
        operation = self.context.get("operation")
        return OperationRefSerializer(operation).data if operation is not None else None


class CloudAccountCreateSerializer(RefuseReadOnlyInputs):
    name = serializers.CharField(max_length=100)
    aws_account_id = serializers.CharField(validators=[AWS_ACCOUNT_ID_VALIDATOR])


class CloudAccountUpdateSerializer(RefuseReadOnlyInputs):
    name = serializers.CharField(max_length=100)


class VerifySerializer(RefuseReadOnlyInputs):
    role_arn = serializers.CharField(max_length=2048)
