"""``/scim/v2``: the HTTP side of SCIM (RFC 7644). The bearer token names the organization.

Plain Django views rather than DRF: SCIM has its own media type (``application/scim+json``),
its own error body (§3.12) and its own list envelope, none of which are the REST API's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from controlplane.sso import scim
from controlplane.sso.models import ScimGroup, ScimToken, ScimUser

SCIM_CONTENT_TYPE = "application/scim+json"
# A provisioning request is one user or group; anything this large is not one.
MAX_BODY_BYTES = 1024 * 1024

Handler = Callable[[HttpRequest, ScimToken, str], HttpResponse]


def respond(body: dict[str, Any] | None, status: int = 200, **headers: str) -> HttpResponse:
    content = b"" if body is None else json.dumps(body).encode()
    response = HttpResponse(content, status=status, content_type=SCIM_CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _error(error: scim.ScimError) -> HttpResponse:
    extra = {"WWW_Authenticate": 'Bearer realm="lakeplane-scim"'} if error.status == 401 else {}
    return respond(error.body(), error.status, **extra)


def _body(request: HttpRequest) -> Any:
    if len(request.body) > MAX_BODY_BYTES:
        raise scim.ScimError(413, "The request body is too large.", "tooMany")
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise scim.ScimError(400, "The body is not JSON.", "invalidSyntax") from None


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/scim/v2")


def scim_endpoint(methods: dict[str, Handler]) -> Callable[..., HttpResponse]:
    """A view that authenticates the SCIM token, dispatches by method and maps ScimError."""

    @csrf_exempt
    def view(request: HttpRequest, resource_id: str = "") -> HttpResponse:
        try:
            token = scim.authenticate(request.headers.get("Authorization", ""))
            handler = methods.get(request.method or "GET")
            if handler is None:
                raise scim.ScimError(405, f"{request.method} is not supported here.")
            return handler(request, token, resource_id)
        except scim.ScimError as error:
            return _error(error)

    return view


def _list(
    request: HttpRequest,
    queryset: QuerySet[Any],
    filters: dict[str, str],
    render: Callable[[Any, str], dict[str, Any]],
) -> HttpResponse:
    expression = request.GET.get("filter")
    if expression:
        field, value = scim.parse_filter(expression, filters)
        queryset = queryset.filter(**{field: value})
    start, count = scim.page_bounds(request.GET.get("startIndex"), request.GET.get("count"))
    total = queryset.count()
    rows = list(queryset.order_by("id")[start - 1 : start - 1 + count]) if count else []
    base = _base_url(request)
    return respond(scim.page(total, start, [render(row, base) for row in rows]))


def _get(queryset: QuerySet[Any], resource_id: str, kind: str) -> Any:
    row: Model | None = queryset.filter(pk=resource_id).first()
    if row is None:
        raise scim.ScimError(404, f"{kind} {resource_id} not found.")
    return row


def _users(token: ScimToken) -> QuerySet[ScimUser]:
    return (
        ScimUser.objects.filter(organization=token.organization)
        .select_related("user", "organization")
        .prefetch_related("groups")
    )


def _groups(token: ScimToken) -> QuerySet[ScimGroup]:
    return (
        ScimGroup.objects.filter(organization=token.organization)
        .select_related("organization")
        .prefetch_related("members")
    )


def _user_answer(request: HttpRequest, row: ScimUser, status: int = 200) -> HttpResponse:
    row = ScimUser.objects.prefetch_related("groups").select_related("user").get(pk=row.pk)
    resource = scim.user_resource(row, _base_url(request))
    return respond(resource, status, Location=resource["meta"]["location"])


def _group_answer(request: HttpRequest, row: ScimGroup, status: int = 200) -> HttpResponse:
    row = ScimGroup.objects.prefetch_related("members").get(pk=row.pk)
    resource = scim.group_resource(row, _base_url(request))
    return respond(resource, status, Location=resource["meta"]["location"])


def _delete_user(token: ScimToken, resource_id: str) -> HttpResponse:
    row = _get(_users(token), resource_id, "User")
    scim.delete_user(actor=scim.actor_for(token), row=row)
    return respond(None, 204)


def _delete_group(token: ScimToken, resource_id: str) -> HttpResponse:
    row = _get(_groups(token), resource_id, "Group")
    scim.delete_group(actor=scim.actor_for(token), row=row)
    return respond(None, 204)


users = scim_endpoint(
    {
        "GET": lambda request, token, _: _list(
            request, _users(token), scim.USER_FILTERS, scim.user_resource
        ),
        "POST": lambda request, token, _: _user_answer(
            request,
            scim.create_user(
                actor=scim.actor_for(token), organization=token.organization, body=_body(request)
            ),
            201,
        ),
    }
)

user = scim_endpoint(
    {
        "GET": lambda request, token, rid: _user_answer(request, _get(_users(token), rid, "User")),
        "PUT": lambda request, token, rid: _user_answer(
            request,
            scim.replace_user(
                actor=scim.actor_for(token),
                row=_get(_users(token), rid, "User"),
                body=_body(request),
            ),
        ),
        "PATCH": lambda request, token, rid: _user_answer(
            request,
            scim.patch_user(
                actor=scim.actor_for(token),
                row=_get(_users(token), rid, "User"),
                body=_body(request),
            ),
        ),
        "DELETE": lambda request, token, rid: _delete_user(token, rid),
    }
)

groups = scim_endpoint(
    {
        "GET": lambda request, token, _: _list(
            request, _groups(token), scim.GROUP_FILTERS, scim.group_resource
        ),
        "POST": lambda request, token, _: _group_answer(
            request,
            scim.create_group(
                actor=scim.actor_for(token), organization=token.organization, body=_body(request)
            ),
            201,
        ),
    }
)

group = scim_endpoint(
    {
        "GET": lambda request, token, rid: _group_answer(
            request, _get(_groups(token), rid, "Group")
        ),
        "PATCH": lambda request, token, rid: _group_answer(
            request,
            scim.patch_group(
                actor=scim.actor_for(token),
                row=_get(_groups(token), rid, "Group"),
                body=_body(request),
            ),
        ),
        "DELETE": lambda request, token, rid: _delete_group(token, rid),
    }
)

SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "documentationUri": "https://docs.lakeplane.dev/sso#scim",
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": scim.MAX_COUNT},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [
        {
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A SCIM token an owner creates at /api/v1/orgs/{org}/scim-tokens.",
            "primary": True,
        }
    ],
}

service_provider_config = scim_endpoint(
    {"GET": lambda request, token, _: respond(SERVICE_PROVIDER_CONFIG)}
)
