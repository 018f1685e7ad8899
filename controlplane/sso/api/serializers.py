from __future__ import annotations

from typing import Any

from rest_framework import serializers

from controlplane.core.roles import Role
from controlplane.sso.models import (
    ScimToken,
    SsoConnection,
    SsoDomain,
    SsoGroupMapping,
    TokenAuthMethod,
)


class SsoConnectionInputSerializer(serializers.Serializer[Any]):
    issuer = serializers.URLField(max_length=500)
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(
        max_length=2000,
        write_only=True,
        trim_whitespace=False,
        help_text="Stored encrypted; never returned. Required when the connection is created.",
    )
    token_endpoint_auth_method = serializers.ChoiceField(choices=TokenAuthMethod.choices)
    scopes = serializers.CharField(max_length=300)
    group_claim = serializers.CharField(max_length=100)
    default_role = serializers.ChoiceField(
        choices=Role.choices,
        allow_blank=True,
        help_text="Role of a user in no mapped group; empty: such users have no access.",
    )
    require_sso = serializers.BooleanField()
    break_glass_owner = serializers.CharField(
        max_length=40, allow_null=True, help_text="usr_… of an owner who may still use a password."
    )

    POLICY_FIELDS = ("require_sso", "break_glass_owner")

    def validate_scopes(self, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            raise serializers.ValidationError("The scopes must include openid.")
        return " ".join(scopes)


class SsoConnectionSerializer(serializers.ModelSerializer[SsoConnection]):
    client_secret_set = serializers.SerializerMethodField()
    endpoints = serializers.SerializerMethodField()
    require_sso = serializers.BooleanField(source="organization.require_sso")
    break_glass_owner = serializers.CharField(
        source="organization.sso_break_glass_owner_id", allow_null=True
    )
    login_url = serializers.SerializerMethodField()
    redirect_uri = serializers.SerializerMethodField()

    class Meta:
        model = SsoConnection
        fields = [
            "id",
            "issuer",
            "client_id",
            "client_secret_set",
            "token_endpoint_auth_method",
            "scopes",
            "group_claim",
            "default_role",
            "require_sso",
            "break_glass_owner",
            "endpoints",
            "login_url",
            "redirect_uri",
            "discovered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_client_secret_set(self, obj: SsoConnection) -> bool:
        return bool(obj.client_secret_encrypted)

    def get_endpoints(self, obj: SsoConnection) -> dict[str, str]:
        return {
            "authorization_endpoint": obj.authorization_endpoint,
            "token_endpoint": obj.token_endpoint,
            "userinfo_endpoint": obj.userinfo_endpoint,
            "jwks_uri": obj.jwks_uri,
        }

    def get_login_url(self, obj: SsoConnection) -> str:
        return f"/sso/start?org={obj.organization.slug}"

    def get_redirect_uri(self, obj: SsoConnection) -> str:
        """What to register at the provider as this client's redirect URI."""
        request = self.context.get("request")
        return request.build_absolute_uri("/sso/callback/") if request else "/sso/callback/"


class SsoDomainSerializer(serializers.ModelSerializer[SsoDomain]):
    status = serializers.SerializerMethodField()
    verification = serializers.SerializerMethodField()

    class Meta:
        model = SsoDomain
        fields = ["id", "domain", "status", "verification", "verified_at", "created_at"]
        read_only_fields = ["id", "status", "verification", "verified_at", "created_at"]

    def get_status(self, obj: SsoDomain) -> str:
        return "verified" if obj.verified_at else "pending"

    def get_verification(self, obj: SsoDomain) -> dict[str, str]:
        return {"type": "TXT", "name": obj.record_name, "value": obj.record_value}


class SsoDomainCreateSerializer(serializers.Serializer[Any]):
    domain = serializers.CharField(max_length=253)


class SsoGroupMappingSerializer(serializers.ModelSerializer[SsoGroupMapping]):
    group = serializers.CharField(max_length=255)
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = SsoGroupMapping
        fields = ["id", "group", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class SsoGroupMappingUpdateSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class ScimTokenSerializer(serializers.ModelSerializer[ScimToken]):
    name = serializers.CharField(max_length=100)

    class Meta:
        model = ScimToken
        fields = ["id", "name", "prefix", "created_at", "revoked_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "created_at", "revoked_at", "last_used_at"]
