"""Domain errors and the problem+json rendering of every API error (RFC 9457).

Services raise the domain errors below; they never import the API layer. The exception
handler turns them, and DRF's own errors, into
``{"type", "title", "status", "detail", "errors": {field: [msg]}}``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError
from django.db import OperationalError as DatabaseUnreachable
from django.db.models import Model, ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from kombu.exceptions import OperationalError as BrokerUnreachable
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://docs.lakeplane.dev/errors/"
# What a lost database or broker connection raises: the request could not be served now, and
# a retry will be (503 + Retry-After), unlike a bug (500).
UNAVAILABLE = (DatabaseUnreachable, InterfaceError, BrokerUnreachable)
RETRY_AFTER_SECONDS = 5


class LakeplaneError(Exception):
    status_code = 400
    code = "invalid"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.headers: dict[str, str] = {}  # e.g. Retry-After on a 429


class InvalidInput(LakeplaneError):
    """Input that parses but breaks a rule (422)."""

    status_code = 422
    code = "invalid-input"
    title = "Invalid input"


class Conflict(LakeplaneError):
    """The request is valid but the resource's current state forbids it (409)."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


class NotFound(LakeplaneError):
    status_code = 404
    code = "not-found"
    title = "Not found"


def _flatten(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF nests errors for nested serializers; problem+json wants ``{"a.b": [msg]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(errors, list):
        if all(not isinstance(e, (dict, list)) for e in errors):
            out[prefix or "non_field_errors"] = [str(e) for e in errors]
        else:
            for i, value in enumerate(errors):
                if value:
                    out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "non_field_errors"] = [str(errors)]
    return out


def problem(
    status_code: int,
    title: str,
    detail: str,
    *,
    code: str,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status_code,
        "detail": detail,
        "errors": errors or {},
    }


def blocking_resources(objects: Iterable[Model]) -> dict[str, list[str]]:
    """``{"compute planes": ["prod (cp_…)", …], …}``: what a refused delete waits for."""
    grouped: dict[str, list[str]] = {}
    for obj in objects:
        grouped.setdefault(str(obj._meta.verbose_name_plural), []).append(str(obj))
    return {kind: sorted(names) for kind, names in sorted(grouped.items())}


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
}


def _unavailable_body() -> dict[str, Any]:
    return problem(
        503,
        "Service unavailable",
        "Lakeplane cannot reach its database or message broker right now; the request was not "
        f"carried out. Retry in {RETRY_AFTER_SECONDS} seconds.",
        code="unavailable",
    )


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, UNAVAILABLE):
        return Response(
            _unavailable_body(),
            status=503,
            content_type=PROBLEM_CONTENT_TYPE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, LakeplaneError):
        body = problem(exc.status_code, exc.title, exc.detail, code=exc.code, errors=exc.errors)
        return Response(
            body, status=exc.status_code, content_type=PROBLEM_CONTENT_TYPE, headers=exc.headers
        )
    if isinstance(exc, (ProtectedError, RestrictedError)):
        # Whatever path deleted a referenced row: a conflict with what references it, never a 500.
        blockers = (
            exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        )
        body = problem(
            409,
            "Conflict",
            "Other resources still use this one; delete them first.",
            code="conflict",
            errors=blocking_resources(blockers),
        )
        return Response(body, status=409, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, DjangoValidationError):
        errors = _flatten(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
        exc = exceptions.ValidationError(errors)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler (also problem+json) takes it
    assert isinstance(exc, exceptions.APIException)
    code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "The request has invalid fields; see errors."
        if list(errors) == ["non_field_errors"] and len(errors["non_field_errors"]) == 1:
            detail = errors["non_field_errors"][0]
        body = problem(code, _TITLES[400], detail, code="validation", errors=errors)
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else str(exc)
        slug = exc.default_code.replace("_", "-") if isinstance(exc.default_code, str) else "error"
        body = problem(code, _TITLES.get(code, "Error"), detail, code=slug)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _json_problem(status_code: int, title: str, detail: str, code: str) -> JsonResponse:
    return JsonResponse(
        problem(status_code, title, detail, code=code),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(404, "Not found", "No such resource.", "not-found")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's own 400s (raised before any view: a too big body, a bad Host header)."""
    if isinstance(exception, RequestDataTooBig):
        return _json_problem(
            413,
            "Request too big",
            f"The request body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            "request-too-big",
        )
    return _json_problem(400, "Bad request", "The request was malformed.", "bad-request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_problem(403, "Permission denied", "This request is not allowed.", "forbidden")


def handler500(request: HttpRequest) -> JsonResponse:
    """Django's last resort. An outage met outside DRF (session or auth middleware reading
    the database) is a 503 like the API's own; anything else is a bug."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE):
        response = JsonResponse(_unavailable_body(), status=503, content_type=PROBLEM_CONTENT_TYPE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return _json_problem(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal error",
        "Lakeplane hit an unexpected error; it has been logged.",
        "internal",
    )
