"""The problem+json error responses of every operation in the served OpenAPI schema.

drf-spectacular documents the success answer each view declares; the errors come from one place
(``controlplane.core.errors``) and apply to whole classes of operations, so they are declared
here, once, by a postprocessing hook rather than on every view. The rules follow what that
handler can answer for an operation of a given shape:

- 400: any request can be malformed (unparsable JSON, a bad cursor or ``limit``, a bad Host).
- 401/403: every operation needs a credential (missing or invalid: 401) and a role (403).
- 404: an operation with a path parameter names something that may not exist (or belongs to
  another organization, which answers exactly the same).
- 409: a write can meet a state that forbids it (API.md "Conflicts").
- 413/415/422: an operation that takes a body can get one too big, of another media type, or
  one that parses but breaks a rule; 422 also answers query and path values that parse but do
  not make sense (a month that does not exist, ``end`` before ``start``).
- 429 is declared by the views that rate-limit (their own ``extend_schema``); it is kept here.

The schemathesis gate (tests/e2e/test_schemathesis.py) fails on any status the schema does not
list and on any error body that does not match the ``Problem`` component.
"""

from __future__ import annotations

from typing import Any

from controlplane.core.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error (RFC 9457 problem details).",
    "properties": {
        "type": {"type": "string", "format": "uri", "example": PROBLEM_BASE + "validation"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Messages per field (`a.b` for a nested field); empty when none.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail", "errors"],
}

# name in components.responses, description
RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed or has invalid fields (see `errors`)."),
    401: ("Unauthenticated", "No valid credential: missing, unknown, expired or revoked."),
    403: ("Forbidden", "The caller's role does not allow this."),
    404: ("NotFound", "No such resource in this organization."),
    409: ("Conflict", "The resource's current state forbids this."),
    413: ("RequestTooBig", "The request body is too big."),
    415: ("UnsupportedMediaType", "The body is not `application/json`."),
    422: ("InvalidInput", "The input parses but breaks a rule (see `errors`)."),
    429: ("TooManyRequests", "Rate limited; retry after `Retry-After` seconds."),
    503: ("Unavailable", "A dependency (database or broker) is unreachable; retry later."),
}

_WRITES = {"post", "put", "patch", "delete"}


def error_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation of this shape can answer (module docstring)."""
    params = operation.get("parameters", [])
    path_params = {p["name"] for p in params if p.get("in") == "path"}
    query_params = {p["name"] for p in params if p.get("in") == "query"}
    has_body = "requestBody" in operation
    statuses = {400}
    if operation.get("security") and {} not in operation["security"]:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if has_body:
        statuses |= {413, 415}
    if has_body or query_params or path_params - {"org"}:
        statuses.add(422)
    return statuses


def add_problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool, **kwargs: Any
) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: declares the Problem component and the
    error responses of every operation, keeping any a view declared itself."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    used: set[int] = set()
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in sorted(error_statuses(method, operation)):
                if str(status) not in responses:
                    responses[str(status)] = {
                        "$ref": f"#/components/responses/{RESPONSES[status][0]}"
                    }
                    used.add(status)
    shared = components.setdefault("responses", {})
    for status in sorted(used):
        name, description = RESPONSES[status]
        shared[name] = {
            "description": description,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return result
