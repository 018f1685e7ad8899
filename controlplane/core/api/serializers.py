from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models.manager import BaseManager
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.core import representation
from controlplane.core.models import AuditEvent, Operation, OperationStep


class OperationStepSerializer(serializers.ModelSerializer[OperationStep]):
    class Meta:
        model = OperationStep
        fields = ["name", "status", "attempts", "started_at", "finished_at", "detail"]
        read_only_fields = fields


class OperationTargetSerializer(serializers.Serializer[Any]):
    type = serializers.CharField()
    id = serializers.CharField()


class OperationErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class OperationListSerializer(serializers.ListSerializer[Operation]):
    """Operations and all their steps, rendered from one query for the steps.

    The per-object path (``prefetch_related("steps")`` and the nested serializers) builds a
    queryset per operation, a model instance per step and walks every field of each: two
    thirds of a request for 50 operations with 5 steps (bench/RESULTS.md). This renders the
    same JSON as ``OperationSerializer`` does for one operation, which
    tests/core/test_operation_list.py checks field by field.
    """

    def to_representation(self, data: Iterable[Operation]) -> list[dict[str, Any]]:  # type: ignore[override]
        return representation.build(list(data.all() if isinstance(data, BaseManager) else data))


class OperationSerializer(serializers.ModelSerializer[Operation]):
    target = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    steps = OperationStepSerializer(many=True, read_only=True)

    class Meta:
        model = Operation
        # many=True (the list endpoint) renders through the batched path above.
        list_serializer_class = OperationListSerializer
        fields = [
            "id",
            "kind",
            "target",
            "status",
            "progress",
            "steps",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OperationTargetSerializer)
    def get_target(self, op: Operation) -> dict[str, str]:
        return {"type": op.target_type, "id": op.target_id}

    @extend_schema_field(OperationErrorSerializer(allow_null=True))
    def get_error(self, op: Operation) -> dict[str, str] | None:
        if not op.error_code:
            return None
        return {"code": op.error_code, "message": op.error_message}


class OperationRefSerializer(serializers.ModelSerializer[Operation]):
    """The short form embedded in 202 answers: ``{"id": "op_…", "status": …}``."""

    class Meta:
        model = Operation
        fields = ["id", "status", "progress"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "actor", "action", "target", "data", "source_ip", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_actor(self, event: AuditEvent) -> dict[str, str | None]:
        return {
            "label": event.actor_label,
            "user": event.actor_user_id,
            "token": event.actor_token_id,
        }

    @extend_schema_field(OperationTargetSerializer)
    def get_target(self, event: AuditEvent) -> dict[str, str]:
        return {"type": event.target_type, "id": event.target_id}


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON number: ``"5"``, ``true`` and ``5.5`` are invalid.

    The API's one rule for JSON types (docs/api.md): a field's value has the JSON type the
    schema names; strings are never read as numbers or booleans.
    """

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A boolean given as JSON ``true``/``false`` only."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
