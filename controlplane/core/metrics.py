"""``/metrics``: the Prometheus exposition of the web process (or, in multi-process mode, of
every gunicorn worker) followed by what the database knows (operations, agents).

Scrapers authenticate with ``Authorization: Bearer $LAKEPLANE_METRICS_TOKEN``. Production
without a token configured answers 404: the endpoint does not exist until an operator decides
who may read it. The sandbox without a token is open (a local Prometheus needs no secret).
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from controlplane.core.errors import PROBLEM_CONTENT_TYPE, problem
from controlplane.core.observability import ControlPlaneCollector

DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)
DATABASE_REGISTRY.register(ControlPlaneCollector())


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or every worker's when gunicorn runs with
    PROMETHEUS_MULTIPROC_DIR (controlplane/gunicorn_conf.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def _unauthorized() -> HttpResponse:
    response = JsonResponse(
        problem(
            401,
            "Not authenticated",
            "Send Authorization: Bearer <the metrics token>.",
            code="not-authenticated",
        ),
        status=401,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token: str = settings.LAKEPLANE_METRICS_TOKEN
    if not token:
        if settings.LAKEPLANE_MODE == "production":
            raise Http404("metrics are off: set LAKEPLANE_METRICS_TOKEN")
    else:
        scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return _unauthorized()
    body = generate_latest(_process_registry()) + generate_latest(DATABASE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
