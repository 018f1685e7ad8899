"""Request context, structured logs and the control plane's own metrics (docs/observability.md).

* Every request gets a request id (a well-formed incoming ``X-Request-ID``, else a new one),
  echoed in the response and kept in a context variable with the organization the request
  acts in (bound by the org-scoped viewsets once they resolve the caller's role). A logging
  filter puts both on every record; Celery task headers carry them into the worker.
* ``LOG_FORMAT=json`` formats records as one JSON object per line with the standard library.
* Metrics are prometheus-client objects: request rate and latency by route come from
  django-prometheus' middleware; Celery tasks are counted here; operations and agent freshness
  are read from the database when ``/metrics`` is scraped.

Importable by the LOGGING setting: no Django, DRF or Celery imports at module level.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER: Final = "X-Request-ID"
# What an incoming request id may look like; anything else (too long, odd characters that could
# forge log lines) is replaced by a fresh id.
REQUEST_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Celery message headers that carry the context into the worker.
TASK_HEADER_REQUEST_ID: Final = "lakeplane_request_id"
TASK_HEADER_ORGANIZATION: Final = "lakeplane_organization_id"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lakeplane_request_id", default=None
)
organization_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lakeplane_organization_id", default=None
)

access_log = logging.getLogger("lakeplane.request")
task_log = logging.getLogger("lakeplane.task")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str:
    """``value`` if it is a well-formed request id, else a new one."""
    if value and REQUEST_ID_PATTERN.match(value):
        return value
    return new_request_id()


def bind_organization(organization_id: str | None) -> None:
    """The organization the current request or task acts in, for every later log line."""
    organization_var.set(organization_id)


@contextmanager
def bound_context(request_id: str | None, organization_id: str | None = None) -> Iterator[None]:
    """Run a block with this request id and organization, restoring the previous ones after."""
    rid = request_id_var.set(request_id)
    org = organization_var.set(organization_id)
    try:
        yield
    finally:
        organization_var.reset(org)
        request_id_var.reset(rid)


# --- requests ------------------------------------------------------------------------------


def route_of(request: HttpRequest) -> str:
    """The URL pattern the request matched (``api/v1/orgs/<str:org>/clusters``), not its path:
    a bounded set of values, and no ids or slugs of customers."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    # DRF's routers contribute regular expressions: drop their anchors.
    return str(route).replace("^", "").replace("$", "") if route else "<unmatched>"


class RequestContextMiddleware:
    """Binds the request id (and, later, the organization) for the request; one access log line
    per request. Placed right after django-prometheus' first middleware, so even a redirect or
    a refusal by a later middleware has an id and a log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        started = time.perf_counter()
        with bound_context(request_id):
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            route = route_of(request)
            access_log.info(
                "%s %s %s %.2fms",
                request.method,
                route,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
        return response


# --- logging -------------------------------------------------------------------------------


class RequestContextFilter(logging.Filter):
    """Puts ``request_id`` and ``organization_id`` (None outside a request or task) on every
    record. A handler filter, so it sees records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.organization_id = organization_var.get()
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "organization_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, organization_id, the
    record's ``extra`` fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "organization_id": getattr(record, "organization_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """The readable format, with the request id and organization appended when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={value}"
            for name in ("request_id", "organization_id")
            if (value := getattr(record, name, None))
        ]
        if not context:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(context)}]{newline}{rest}"


# --- Celery --------------------------------------------------------------------------------

CELERY_TASKS: Final = Counter(
    "lakeplane_celery_tasks",
    "Celery tasks run, by task name and outcome (success, failure, retry, …).",
    ["task", "outcome"],
)
CELERY_TASK_SECONDS: Final = Histogram(
    "lakeplane_celery_task_seconds",
    "Time a Celery task took to run, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

# task id → (start time, context tokens to restore); tasks of one worker process run one at a
# time per thread, and the id keys them apart when threads are used.
_running: dict[str, tuple[float, contextvars.Token[str | None], contextvars.Token[str | None]]] = {}


def _on_before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id, organization_id = request_id_var.get(), organization_var.get()
    if request_id is not None:
        headers.setdefault(TASK_HEADER_REQUEST_ID, request_id)
    if organization_id is not None:
        headers.setdefault(TASK_HEADER_ORGANIZATION, organization_id)


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)

    def header(name: str, current: str | None) -> str | None:
        value = getattr(request, name, None) if request is not None else None
        return value if isinstance(value, str) else current

    # Eagerly run tasks have no message headers: they keep the caller's context as it is.
    rid = request_id_var.set(header(TASK_HEADER_REQUEST_ID, request_id_var.get()))
    org = organization_var.set(header(TASK_HEADER_ORGANIZATION, organization_var.get()))
    if task_id is not None:
        _running[task_id] = (time.perf_counter(), rid, org)


def _on_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    name = str(getattr(task, "name", "unknown"))
    outcome = (state or "unknown").lower()
    started = _running.pop(task_id, None) if task_id is not None else None
    CELERY_TASKS.labels(task=name, outcome=outcome).inc()
    if started is None:
        return
    start, rid, org = started
    duration = time.perf_counter() - start
    CELERY_TASK_SECONDS.labels(task=name).observe(duration)
    task_log.info(
        "task %s %s in %.2fms",
        name,
        outcome,
        duration * 1000,
        extra={
            "task": name,
            "task_id": task_id,
            "outcome": outcome,
            "duration_ms": round(duration * 1000, 2),
        },
    )
    try:
        organization_var.reset(org)
        request_id_var.reset(rid)
    except ValueError:
        # Reset from another context than the prerun's (a thread pool): clear instead.
        organization_var.set(None)
        request_id_var.set(None)


def connect_celery_signals() -> None:
    """Wire the context propagation and task metrics into Celery (idempotent: weak=False with
    a fixed dispatch_uid)."""
    from celery import signals

    signals.before_task_publish.connect(
        _on_before_publish, weak=False, dispatch_uid="lakeplane.observability.publish"
    )
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="lakeplane.observability.pre")
    signals.task_postrun.connect(
        _on_postrun, weak=False, dispatch_uid="lakeplane.observability.post"
    )


# --- what the database knows -----------------------------------------------------------------


class ControlPlaneCollector(Collector):
    """Operations by status and agents by freshness, read when ``/metrics`` is scraped (two
    grouped queries). Lives in its own registry (controlplane/core/metrics.py) so that only the
    scrape reads the database, and in multi-process mode it is collected once, not per worker."""

    def collect(self) -> Iterable[Metric]:
        from django.apps import apps
        from django.conf import settings
        from django.db.models import Count, Min, Q

        operation = apps.get_model("core", "Operation")
        operations = GaugeMetricFamily(
            "lakeplane_operations", "Operations by status.", labels=["status"]
        )
        counts = dict(operation.objects.order_by().values_list("status").annotate(n=Count("id")))
        for status in ("queued", "running", "succeeded", "failed", "canceled"):
            operations.add_metric([status], float(counts.get(status, 0)))
        yield operations

        plane = apps.get_model("computeplanes", "ComputePlane")
        now = datetime.now(UTC)
        threshold = timedelta(
            seconds=settings.LAKEPLANE_AGENT_HEARTBEAT_SECONDS
            * settings.LAKEPLANE_AGENT_STALE_INTERVALS
        )
        cutoff = now - threshold
        live = plane.objects.filter(deleted_at__isnull=True)
        summary = live.aggregate(
            fresh=Count("id", filter=Q(agent_last_seen_at__gte=cutoff)),
            stale=Count("id", filter=Q(agent_last_seen_at__lt=cutoff)),
            never=Count("id", filter=Q(agent_last_seen_at__isnull=True)),
            oldest=Min("agent_last_seen_at"),
        )
        agents = GaugeMetricFamily(
            "lakeplane_agents",
            "Agents of live compute planes by freshness: fresh (heard from within the stale "
            "threshold), stale (silent longer), never (never connected).",
            labels=["freshness"],
        )
        for freshness in ("fresh", "stale", "never"):
            agents.add_metric([freshness], float(summary[freshness]))
        yield agents
        oldest = summary["oldest"]
        yield GaugeMetricFamily(
            "lakeplane_agent_heartbeat_age_max_seconds",
            "Seconds since the most silent connected agent was last heard from (0: none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
