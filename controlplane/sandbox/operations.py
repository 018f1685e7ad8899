"""Name the AWS operation an HTTP request to the emulator performs.

The fault injector and the call log need ``(service, action)`` for every request. Query-protocol
services (STS, IAM, EC2, CloudFormation) carry ``Action=`` in the form body, JSON services carry
``X-Amz-Target``; REST services (EKS, S3) are matched against the request URIs of botocore's own
service model, so no table of operations is kept by hand here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import botocore.session

_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

# Operations that only read. Everything else counts as mutating, which is the safe side for
# "a second reconcile makes zero mutating calls" assertions.
_READ_ONLY_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Head",
    "Lookup",
    "Search",
    "Simulate",
    "Validate",
    "Estimate",
    "Preview",
)
_READ_ONLY_ACTIONS = frozenset({"AssumeRole", "DecodeAuthorizationMessage"})


def is_mutating(action: str) -> bool:
    return not (action.startswith(_READ_ONLY_PREFIXES) or action in _READ_ONLY_ACTIONS)


@dataclass(frozen=True)
class SignedRequest:
    """What the SigV4 Authorization header says about a request."""

    access_key_id: str
    region: str
    service: str


def parse_authorization(header: str) -> SignedRequest | None:
    match = _CREDENTIAL_SCOPE.search(header)
    if match is None:
        return None
    return SignedRequest(access_key_id=match[1], region=match[2], service=match[3])


@dataclass(frozen=True)
class _RestRoute:
    method: str
    path: re.Pattern[str]
    query_keys: frozenset[str]
    literal_length: int
    operation: str


def _compile_uri(request_uri: str) -> tuple[re.Pattern[str], frozenset[str], int]:
    path, _, query = request_uri.partition("?")
    literal = 0
    pattern = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            # {Key+} is greedy and may contain slashes; other labels are one segment.
            pattern += ".+" if piece.endswith("+}") else "[^/]+"
        else:
            pattern += re.escape(piece)
            literal += len(piece)
    keys = frozenset(k.split("=", 1)[0] for k in query.split("&") if k)
    return re.compile(f"^{pattern}/?$"), keys, literal


@functools.cache
def _rest_routes(service: str) -> tuple[_RestRoute, ...]:
    session = botocore.session.get_session()
    try:
        model = session.get_service_model(service)
    except Exception:  # an unknown service simply has no named operations
        return ()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        pattern, keys, literal = _compile_uri(http.get("requestUri", "/"))
        routes.append(_RestRoute(http.get("method", "POST"), pattern, keys, literal, name))
    # Most specific first: required query keys, then the longer literal path.
    routes.sort(key=lambda r: (len(r.query_keys), r.literal_length), reverse=True)
    return tuple(routes)


def rest_operation(service: str, method: str, path: str, query: str) -> str | None:
    present = set(parse_qs(query, keep_blank_values=True))
    for route in _rest_routes(service):
        if route.method == method and route.query_keys <= present and route.path.match(path):
            return route.operation
    return None


def action_of(
    service: str, method: str, path: str, query: str, target: str | None, form: dict[str, str]
) -> str:
    """The operation name, e.g. ``AssumeRole`` or ``ListClusters``; ``Unknown`` if unnamed."""
    if target:
        return target.rsplit(".", 1)[-1]
    if "Action" in form:
        return form["Action"]
    return rest_operation(service, method, path, query) or "Unknown"
