from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.core import workflows
from controlplane.core.api.serializers import AuditEventSerializer, OperationSerializer
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.viewsets import OrgScopedViewSet


class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    # No prefetch_related("steps"): a page's steps come from one query in
    # OperationListSerializer, and a single operation loads its steps in one query anyway.
    queryset = Operation.objects.all()
    serializer_class = OperationSerializer

    @extend_schema(request=None, responses={202: OperationSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        operation = self.get_object()
        operation = workflows.retry_operation(actor=self.actor, operation=operation)
        operation = Operation.objects.prefetch_related("steps").get(pk=operation.pk)
        return Response(OperationSerializer(operation).data, status=202)


class AuditEventViewSet(mixins.ListModelMixin, OrgScopedViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
