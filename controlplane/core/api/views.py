from __future__ import annotations

from typing import Any, cast

from django.db import connection
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


class _PageRows:
    """The operations list's page query for CursorPagination, its SQL compiled once per process.

    The list is polled by consoles and CLIs. Cloning and compiling the ORM queryset for each
    page (filter by org, order, cursor position, slice) cost ~0.25 ms of CPU per request
    (bench/RESULTS.md), as much as everything else on the path besides authentication. This
    object offers the three queryset operations ``CursorPagination.paginate_queryset`` uses —
    ``order_by``, ``filter(id__lt|id__gt=…)`` and a slice — so DRF's own paginator still
    decides the page, the cursor and the ``next``/``previous`` links (identical answers); only
    the SQL comes from a cache. Each variant is compiled by the ORM itself from the very
    queryset the generic path would build, so the SQL stays what the ORM would send; LIMIT and
    OFFSET, which Django writes as literals, are bound as parameters instead. PostgreSQL only:
    elsewhere (SQLite in the sandbox) the view pages the queryset as before.
    """

    _ORG = "__organization__"
    _POSITION = "__position__"
    _compiled: dict[tuple[str, str | None], str] = {}

    def __init__(
        self, organization_id: str, ordering: str = "-id", position: tuple[str, str] | None = None
    ) -> None:
        self._organization_id = organization_id
        self._ordering = ordering
        self._position = position  # ("lt" | "gt", value)

    def order_by(self, *fields: str) -> _PageRows:
        if fields not in (("id",), ("-id",)):  # pragma: no cover - the paginator's ordering
            raise ValueError(f"unsupported ordering {fields!r}")
        return _PageRows(self._organization_id, fields[0], self._position)

    def filter(self, **lookups: str) -> _PageRows:
        ((lookup, value),) = lookups.items()
        if lookup not in ("id__lt", "id__gt"):  # pragma: no cover - the paginator's filters
            raise ValueError(f"unsupported filter {lookup!r}")
        return _PageRows(self._organization_id, self._ordering, (lookup, value))

    @classmethod
    def _sql(cls, ordering: str, lookup: str | None) -> str:
        key = (ordering, lookup)
        if key not in cls._compiled:
            queryset = Operation.objects.filter(organization_id=cls._ORG)
            expected: tuple[str, ...] = (cls._ORG,)
            if lookup is not None:
                queryset = queryset.filter(**{lookup: cls._POSITION})
                expected = (cls._ORG, cls._POSITION)
            rows = queryset.values("id", "representation").order_by(ordering)
            sql, params = rows.query.sql_with_params()
            if tuple(params) != expected:  # pragma: no cover - a Django change
                raise RuntimeError(f"unexpected page query parameters: {params!r}")
            cls._compiled[key] = f"{sql} LIMIT %s OFFSET %s"
        return cls._compiled[key]

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        start, stop = window.start or 0, window.stop
        lookup = self._position[0] if self._position else None
        params: list[Any] = [self._organization_id]
        if self._position is not None:
            params.append(self._position[1])
        params += [stop - start, start]
        with connection.cursor() as cursor:
            cursor.execute(self._sql(self._ordering, lookup), params)
            return [{"id": id_, "representation": text} for id_, text in cursor.fetchall()]


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
        if connection.vendor == "postgresql" and self._plain_org_scope():
            page = self.paginate_queryset(_PageRows(self.organization.pk))  # type: ignore[arg-type]
        else:
            queryset = self.filter_queryset(self.get_queryset()).values("id", "representation")
            page = self.paginate_queryset(queryset)
        assert page is not None  # the API always paginates (DEFAULT_PAGINATION_CLASS)
        items = [RawJSON(text) for text in representation.page_representations(page)]
        return self.get_paginated_response(items)

    def _plain_org_scope(self) -> bool:
        """True while get_queryset() is exactly "this org's operations" (what _PageRows reads):
        no narrowing in safely_get_queryset and no filter backends. Anything added later sends
        the list back to the ORM path, so the precompiled SQL can never widen the scope."""
        return (
            type(self).safely_get_queryset is OrgScopedViewSet.safely_get_queryset
            and not self.filter_backends
        )

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
