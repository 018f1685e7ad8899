from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from controlplane.core import representation, workflows
from controlplane.core.api.renderers import PreRenderedJSONRenderer, RawJSON
from controlplane.core.api.serializers import AuditEventSerializer, OperationSerializer
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.viewsets import OrgScopedViewSet


class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    # The list copies each operation's stored JSON (controlplane/core/representation.py);
    # the detail renders through OperationSerializer, which loads its steps in one query.
    queryset = Operation.objects.all()
    serializer_class = OperationSerializer
    renderer_classes = [
        PreRenderedJSONRenderer,
        *(
            r
            for r in cast(list[type[BaseRenderer]], api_settings.DEFAULT_RENDERER_CLASSES)
            if r is not JSONRenderer
        ),
    ]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Same page, cursor and envelope as ListModelMixin.list; only the items' source
        # differs: the stored JSON of each row instead of a serializer run per request.
        # values(): the cursor paginator reads "id" from dicts too; no model instances.
        queryset = self.filter_queryset(self.get_queryset()).values("id", "representation")
        page = self.paginate_queryset(queryset)
        assert page is not None  # the API always paginates (DEFAULT_PAGINATION_CLASS)
        items = [RawJSON(text) for text in representation.page_representations(page)]
        return self.get_paginated_response(items)

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
