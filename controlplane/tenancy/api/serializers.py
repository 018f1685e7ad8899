from __future__ import annotations

from typing import Any

from rest_framework import serializers

from controlplane.core.api.serializers import StrictIntegerField
from controlplane.core.roles import Role
from controlplane.tenancy.models import SLUG_VALIDATOR, ApiToken, Membership, Organization, User
from controlplane.tenancy.services import MAX_TOKEN_DAYS


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email", "name"]
        read_only_fields = fields


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    slug = serializers.CharField(max_length=50, validators=[SLUG_VALIDATOR])
    name = serializers.CharField(max_length=200)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "slug", "name", "role", "allow_non_expiring_tokens", "created_at"]
        read_only_fields = ["id", "role", "allow_non_expiring_tokens", "created_at"]

    def get_role(self, org: Organization) -> str | None:
        roles: dict[str, str] = self.context.get("roles", {})
        return roles.get(org.pk)


class OrganizationUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    allow_non_expiring_tokens = serializers.BooleanField(
        required=False, help_text="Owners only; audited. Off: every token expires."
    )


# Declared (rather than a DictField) so the schema, and the console's client generated from it,
# know a membership's fields. A comment, not a docstring: docstrings land in the schema.
class MembershipSummarySerializer(serializers.Serializer[Any]):
    org = serializers.CharField(help_text="The organization's slug.")
    role = serializers.ChoiceField(choices=Role.choices)


class MeSerializer(serializers.Serializer[Any]):
    user = UserSerializer()
    memberships = MembershipSummarySerializer(many=True)


class MemberSerializer(serializers.ModelSerializer[Membership]):
    id = serializers.CharField(source="user.id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.name", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "joined_at"]
        read_only_fields = fields


# The tokens a demotion lowered to the member's new role (a token never outranks its creator).
class CappedTokenSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    # "from" is a Python keyword: declared through the fields mapping below.
    to = serializers.ChoiceField(choices=Role.choices)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.ChoiceField(choices=Role.choices)
        return fields


class MemberRoleChangeSerializer(MemberSerializer):
    tokens_capped = CappedTokenSerializer(many=True, read_only=True)

    class Meta(MemberSerializer.Meta):
        fields = [*MemberSerializer.Meta.fields, "tokens_capped"]
        read_only_fields = fields


class MemberCreateSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)


class MemberUpdateSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=Role.choices)


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    created_by = serializers.CharField(source="created_by.email", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "role",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices)
    # The range (1 to MAX_TOKEN_DAYS, null only where an owner allowed it, no longer than a
    # minting token) is the service's rule: 422 with the field named.
    expires_in_days = StrictIntegerField(
        required=False,
        allow_null=True,
        default=MAX_TOKEN_DAYS,
        help_text=f"1 to {MAX_TOKEN_DAYS} days (default {MAX_TOKEN_DAYS}); null never expires, "
        "only where an owner allowed non-expiring tokens.",
    )


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown only once.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
