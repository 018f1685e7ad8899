from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, cast

from django.db import connection
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from controlplane.core import representation, workflows
from controlplane.core.api import lean
from controlplane.core.api.renderers import PreRenderedJSONRenderer, RawJSON
from controlplane.core.api.serializers import AuditEventSerializer, OperationSerializer
from controlplane.core.db import fetch_prepared
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.observability import bind_organization
from controlplane.core.roles import Role, role_at_least
from controlplane.tenancy import authentication
from controlplane.tenancy.viewsets import OrgScopedViewSet


class _PageWindow:
    """What ``CursorPagination.paginate_queryset`` asks of a queryset — ``order_by``,
    ``filter(id__lt|id__gt=…)`` and a slice — for the lean entry point below, whose page comes
    from the one statement that also authenticates. DRF's own paginator still decides the page,
    the cursor and the ``next``/``previous`` links, so the answers are the DRF view's."""

    def __init__(self) -> None:
        self._ordering = "-id"
        self._position: tuple[str, str] | None = None  # ("id__lt" | "id__gt", value)

    def _with(self, **changes: Any) -> Self:
        clone = copy.copy(self)
        clone.__dict__.update(changes)
        return clone

    def order_by(self, *fields: str) -> Self:
        if fields not in (("id",), ("-id",)):  # pragma: no cover - the paginator's ordering
            raise ValueError(f"unsupported ordering {fields!r}")
        return self._with(_ordering=fields[0])

    def filter(self, **lookups: str) -> Self:
        ((lookup, value),) = lookups.items()
        if lookup not in ("id__lt", "id__gt"):  # pragma: no cover - the paginator's filters
            raise ValueError(f"unsupported filter {lookup!r}")
        return self._with(_position=(lookup, value))

    def _bounds(self, window: slice) -> tuple[str | None, str | None, int, int]:
        """The cursor lookup and position (None before the first page), LIMIT and OFFSET."""
        start = window.start or 0
        lookup, position = self._position or (None, None)
        return lookup, position, window.stop - start, start


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
        # One path on every database: a precompiled page statement here measured 1.1x
        # (bench/sql_paths.py, list-session), below the 1.5x that would keep it.
        queryset = self.filter_queryset(self.get_queryset()).values("id", "representation")
        page = self.paginate_queryset(queryset)
        assert page is not None  # the API always paginates (DEFAULT_PAGINATION_CLASS)
        items = [RawJSON(text) for text in representation.page_representations(page)]
        return self.get_paginated_response(items)

    @classmethod
    def _plain_org_scope(cls) -> bool:
        """True while get_queryset() is exactly "this org's operations" (what the lean page reads):
        no narrowing in safely_get_queryset and no filter backends. Anything added later sends
        the list back to the DRF path, so the lean statement can never widen the scope."""
        return (
            cls.safely_get_queryset is OrgScopedViewSet.safely_get_queryset
            and not cls.filter_backends
        )

    @extend_schema(request=None, responses={202: OperationSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        operation = self.get_object()
        operation = workflows.retry_operation(actor=self.actor, operation=operation)
        operation = Operation.objects.prefetch_related("steps").get(pk=operation.pk)
        return Response(OperationSerializer(operation).data, status=202)


# --- the lean entry point of the operations list ----------------------------------------------
# Consoles and CLIs poll the list with an API token. The usual request (GET, a well-formed
# Bearer token, JSON accepted, only ?limit= and ?cursor=) is served here without DRF's request
# wrapping, content negotiation and response finalising, and with ONE statement that both
# authenticates the token (every check of BearerTokenAuthentication and the org's slug) and
# reads the page, instead of one round trip for each (bench/RESULTS.md). Anything else — no
# token or a bad one, another org, a role too low, an invalid cursor, other parameters or
# methods — goes to the DRF view unchanged, which authenticates again and answers exactly as
# before. The page, the cursor and the links come from the same CursorPagination object
# driven the same way, the envelope from its get_paginated_response and the bytes from the
# view's renderer, so the answer is the DRF view's (tests/core/test_operation_list_lean.py).
_LEAN_PARAMS = frozenset({"limit", "cursor"})
_ALLOW = "GET, HEAD, OPTIONS"


# The token (no row unless valid and in the org) and its org's page, rows in page order;
# an empty page is one row of NULLs after the token.
_AUTHENTICATED_PAGE = """WITH token AS ({token})
SELECT token.id, token.role, token.use_unrecorded, token.organization_id, page.id,
    page.representation
FROM token LEFT JOIN LATERAL (
    SELECT id, representation FROM {operation}
    WHERE organization_id = token.organization_id{position}
    ORDER BY id {direction} LIMIT %(limit)s OFFSET %(offset)s
) page ON TRUE
ORDER BY page.id {direction}"""


@dataclass(frozen=True)
class _ValidToken:
    id: str
    role: str
    use_unrecorded: bool
    organization_id: str


class _AuthenticatedPageRows(_PageWindow):
    """The page window read by one statement that also authenticates: no page unless the token
    is valid."""

    _compiled_gated: dict[tuple[str, str | None], str] = {}

    def __init__(
        self, credential: authentication.BearerCredential, org_slug: str, now: datetime
    ) -> None:
        super().__init__()
        self._params = authentication.valid_token_params(credential, org_slug, now)
        # Shared by the clones the paginator makes: the token the statement found, if any.
        self.found: list[_ValidToken] = []

    @classmethod
    def _gated_sql(cls, ordering: str, lookup: str | None) -> str:
        key = (ordering, lookup)
        if key not in cls._compiled_gated:
            cls._compiled_gated[key] = _AUTHENTICATED_PAGE.format(
                token=authentication.valid_token_sql(),
                operation=Operation._meta.db_table,
                position={None: "", "id__lt": " AND id < %(position)s"}.get(
                    lookup, " AND id > %(position)s"
                ),
                direction="DESC" if ordering.startswith("-") else "ASC",
            )
        return cls._compiled_gated[key]

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        lookup, position, limit, offset = self._bounds(window)
        params = {**self._params, "limit": limit, "offset": offset}
        if position is not None:
            params["position"] = position
        rows = fetch_prepared(self._gated_sql(self._ordering, lookup), params)
        if rows:
            self.found.append(_ValidToken(*rows[0][:4]))
        return [{"id": row[4], "representation": row[5]} for row in rows if row[4] is not None]


@dataclass(frozen=True)
class _PaginatorRequest:
    """What CursorPagination reads from a DRF Request, taken from the Django request."""

    query_params: QueryDict
    build_absolute_uri: Callable[[], str]


def _lean_list(request: HttpRequest, org_slug: str) -> HttpResponse | None:
    """The usual list request's answer, or None to hand the request to the DRF view."""
    view = OperationViewSet
    if not (
        request.method == "GET"
        and connection.vendor == "postgresql"
        and lean.accepts_json(request)
        and _LEAN_PARAMS.issuperset(request.GET)
        and view._plain_org_scope()
    ):
        return None
    credential = authentication.bearer_credential(request.META.get("HTTP_AUTHORIZATION", ""))
    if credential is None:
        return None
    now = timezone.now()
    rows = _AuthenticatedPageRows(credential, org_slug, now)
    paginator = view.pagination_class()  # type: ignore[misc]
    try:
        page: list[dict[str, Any]] | None = paginator.paginate_queryset(
            rows,  # type: ignore[arg-type]
            _PaginatorRequest(request.GET, request.build_absolute_uri),  # type: ignore[arg-type]
            view=view,  # type: ignore[arg-type]
        )
    except exceptions.APIException:
        return None  # an invalid cursor: DRF authenticates first, then answers 404
    required = view.required_role("list", "GET")
    if not rows.found or not role_at_least(Role(rows.found[0].role), required):
        return None
    token = rows.found[0]
    bind_organization(token.organization_id)
    if token.use_unrecorded:
        authentication.record_use(token.id, now)
    assert page is not None
    items = [RawJSON(text) for text in representation.page_representations(page)]
    data = paginator.get_paginated_response(items).data
    renderer = view.renderer_classes[0]()
    return lean.response_as_drf(
        renderer.render(data, renderer.media_type),
        view=view,
        allow=_ALLOW,
        content_type=renderer.media_type,
    )


def lean_operations_list(drf_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The list route's view: the lean answer when it applies, else ``drf_view``. Carries the
    DRF view's attributes (cls, actions, csrf_exempt), so URLconf walkers and the schema see
    the same viewset."""

    @functools.wraps(drf_view)
    def operations_list(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        answer = _lean_list(request, kwargs.get("org", ""))
        return answer if answer is not None else drf_view(request, *args, **kwargs)

    return operations_list


class AuditEventViewSet(mixins.ListModelMixin, OrgScopedViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
