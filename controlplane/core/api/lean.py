"""What the lean entry points share: the few hot endpoints whose usual request is answered
without DRF's request wrapping (the operations list, the agent's heartbeat and status report).

Each hands anything unusual to its DRF view, and answers the usual request with the bytes and
headers that view would send; these two helpers are the parts of that which do not depend on
the endpoint.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from rest_framework.views import APIView

# What the lean answer (JSON) satisfies; any other Accept header goes to DRF's negotiation.
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


def accepts_json(request: HttpRequest) -> bool:
    return request.headers.get("Accept", "").strip() in JSON_ACCEPTS


def response_as_drf(
    body: bytes,
    *,
    view: type[APIView],
    allow: str,
    content_type: str = "application/json",
    status: int = 200,
) -> HttpResponse:
    """``body`` with the headers ``view`` would add: ``Allow``, and ``Vary: Accept`` as
    APIView.default_response_headers does when the view can render more than one type."""
    response = HttpResponse(body, content_type=content_type, status=status)
    response["Allow"] = allow
    if len(view.renderer_classes) > 1:
        response["Vary"] = "Accept"
    return response
