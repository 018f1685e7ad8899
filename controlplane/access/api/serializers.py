from __future__ import annotations

from typing import Any

from rest_framework import serializers

from computeplane_agent.access import PRIVILEGES
from controlplane.access.models import RuleSet


class RuleSerializer(serializers.Serializer[Any]):
    """One rule: who (users, groups; neither = everyone), which tables, what it allows."""

    effect = serializers.ChoiceField(choices=["allow", "deny"], default="allow")
    users = serializers.ListField(child=serializers.CharField(), required=False)
    groups = serializers.ListField(child=serializers.CharField(), required=False)
    table = serializers.CharField(help_text="catalog.schema.table, each part a name or *")
    privileges = serializers.ListField(
        child=serializers.ChoiceField(choices=list(PRIVILEGES)), required=False
    )


class RuleSetSerializer(serializers.ModelSerializer[RuleSet]):
    rules = RuleSerializer(many=True)
    clusters = serializers.SerializerMethodField()

    class Meta:
        model = RuleSet
        fields = ["id", "name", "rules", "clusters", "version", "created_at", "updated_at"]

    def get_clusters(self, obj: RuleSet) -> list[str]:
        return sorted(a.cluster_id for a in obj.attachments.all())


class RuleSetInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=63)
    # Validated as a whole by access.services (field errors name rules.<n>.<field>).
    rules = serializers.JSONField()
    clusters = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class RuleSetUpdateInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=63, required=False)
    rules = serializers.JSONField(required=False)
    clusters = serializers.ListField(child=serializers.CharField(), required=False)


class CheckInput(serializers.Serializer[Any]):
    user = serializers.CharField(max_length=128)
    groups = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, default=list
    )
    table = serializers.RegexField(
        r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        help_text="catalog.schema.table",
    )
    privilege = serializers.ChoiceField(choices=list(PRIVILEGES))


class CheckAnswer(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    rule = serializers.IntegerField(allow_null=True, help_text="1-based; null: no rule matched")
    reason = serializers.CharField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "allowed": instance.allowed,
            "rule": None if instance.rule is None else instance.rule + 1,
            "reason": instance.reason,
        }
