"""Observability: request ids, structured logs carrying request and organization, /metrics.

Log lines are captured through a handler built from the configured console handler's own
filters (request context, client errors, secret redaction) and the JSON formatter production
uses, so what is asserted is what the product writes.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from controlplane.agentapi.tasks import agent_housekeeping
from controlplane.core.observability import JsonFormatter, accepted_request_id
from controlplane.core.roles import Role
from controlplane.providers.aws.credentials import AwsClients, AwsConfig
from tests.factories import ComputePlaneFactory, OperationFactory, UserFactory

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Any, **headers: str) -> Samples:
    answer = client.get("/metrics", **headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """JSON log lines written while the test runs, through the configured handler's filters."""
    root = logging.getLogger()
    console = next(h for h in root.handlers if h.get_name() == "console")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


# --- request ids ---------------------------------------------------------------------------


def test_a_well_formed_request_id_is_kept_and_anything_else_replaced() -> None:
    client = Client()
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.91_ZZ")
    assert kept["X-Request-ID"] == "edge-7f3a.91_ZZ"
    for hostile in ("short", "has space in it", "x" * 65, "line\nbreak-forged", "ünicode-id"):
        answer = client.get("/healthz", HTTP_X_REQUEST_ID=hostile)
        assert answer["X-Request-ID"] != hostile
        assert accepted_request_id(answer["X-Request-ID"]) == answer["X-Request-ID"]
    fresh = {Client().get("/healthz")["X-Request-ID"] for _ in range(3)}
    assert len(fresh) == 3


def test_a_requests_log_lines_carry_its_request_id_and_organization(
    org: Any, make_caller: Callable[..., Any], log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    OperationFactory(organization=org)
    # The operations list (served by its lean entry point on PostgreSQL) and a DRF view.
    for path, request_id in (("operations", "req-operations-1"), ("clusters", "req-clusters-1")):
        answer = caller.client.get(f"/api/v1/orgs/{org.slug}/{path}", HTTP_X_REQUEST_ID=request_id)
        assert answer.status_code == 200
        assert answer["X-Request-ID"] == request_id
        lines = [line for line in log_lines() if line["request_id"] == request_id]
        access = [line for line in lines if line["logger"] == "lakeplane.request"]
        assert len(access) == 1, lines
        assert access[0]["organization_id"] == org.id
        assert access[0]["method"] == "GET"
        assert access[0]["status"] == 200
        assert access[0]["route"].startswith("api/v1/orgs/<str:org>/")
        assert org.slug not in access[0]["route"]  # the pattern, never a customer's slug
        assert all(line["organization_id"] == org.id for line in lines)
    # A line written outside any request carries neither.
    logging.getLogger("lakeplane.test").info("between requests")
    outside = [line for line in log_lines() if line["message"] == "between requests"]
    assert outside[0]["request_id"] is None
    assert outside[0]["organization_id"] is None


def test_no_log_line_contains_a_planted_secret(
    org: Any, make_caller: Callable[..., Any], log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    caller = make_caller(org, Role.OWNER, via="token")
    bearer = caller.client._credentials["HTTP_AUTHORIZATION"].split()[1]
    password = "planted-Password-9f8e7d"
    UserFactory(email="someone@example.com")
    created = caller.client.post(
        f"/api/v1/orgs/{org.slug}/tokens?secret=planted-query-secret",
        {"name": "ci", "role": "viewer", "expires_in_days": 7},
        format="json",
    )
    assert created.status_code == 201, created.content
    new_secret = created.json()["token"]
    Client().post("/login/", {"username": "someone@example.com", "password": password})
    caller.client.get(f"/api/v1/orgs/{org.slug}/clusters?token={bearer}")
    # An AWS answer holding a secret, logged by our own code rather than botocore's loggers.
    logging.getLogger("controlplane.test").warning(
        "sts said <SecretAccessKey>planted-aws-secret</SecretAccessKey>"
        "<SessionToken>planted-session-token</SessionToken>"
    )
    written = json.dumps(log_lines())
    assert "lakeplane.request" in written  # the requests were logged …
    assert "[redacted]" in written  # … and the AWS answer, scrubbed
    for secret in (
        bearer,
        new_secret,
        password,
        "planted-query-secret",
        "planted-aws-secret",
        "planted-session-token",
    ):
        assert secret not in written


# --- /metrics ------------------------------------------------------------------------------


def test_metrics_name_requests_tasks_operations_and_agents(
    org: Any, make_caller: Callable[..., Any]
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    OperationFactory(organization=org, status="running")
    OperationFactory(organization=org, status="failed")
    now = timezone.now()
    ComputePlaneFactory(organization=org, agent_last_seen_at=now)
    ComputePlaneFactory(organization=org, agent_last_seen_at=now - timedelta(hours=1))
    ComputePlaneFactory(organization=org, agent_last_seen_at=None)

    before = scrape(Client())
    assert caller.client.get(f"/api/v1/orgs/{org.slug}/clusters").status_code == 200
    agent_housekeeping.apply()  # a task run in process (task_prerun/postrun as in a worker)
    samples = scrape(Client())

    requests = "django_http_requests_total_by_view_transport_method_total"
    labels = {"view": "cluster-list", "method": "GET", "transport": "http"}
    assert value(samples, requests, **labels) == value(before, requests, **labels) + 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert value(samples, latency, view="cluster-list", method="GET") >= 1
    task = "controlplane.agentapi.tasks.agent_housekeeping"
    tasks = "lakeplane_celery_tasks_total"
    assert value(samples, tasks, task=task, outcome="success") == (
        value(before, tasks, task=task, outcome="success") + 1
    )
    assert value(samples, "lakeplane_celery_task_seconds_count", task=task) >= 1
    assert value(samples, "lakeplane_operations", status="running") == 1
    assert value(samples, "lakeplane_operations", status="failed") == 1
    assert value(samples, "lakeplane_operations", status="queued") == 0
    assert value(samples, "lakeplane_agents", freshness="fresh") == 1
    assert value(samples, "lakeplane_agents", freshness="stale") == 1
    assert value(samples, "lakeplane_agents", freshness="never") == 1
    assert value(samples, "lakeplane_agent_heartbeat_age_max_seconds") >= 3600


def test_metrics_need_the_token_when_one_is_set(settings: Any) -> None:
    settings.LAKEPLANE_METRICS_TOKEN = "scrape-token-0123456789"
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert wrong["Content-Type"] == "application/problem+json"
    scrape(Client(), HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")


def test_production_without_a_metrics_token_has_no_metrics(settings: Any) -> None:
    settings.LAKEPLANE_MODE = "production"
    settings.LAKEPLANE_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    settings.LAKEPLANE_METRICS_TOKEN = "scrape-token-0123456789"
    scrape(Client(), HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")


# --- AWS calls -----------------------------------------------------------------------------


class _ThrottlingSts(BaseHTTPRequestHandler):
    """An STS endpoint that throttles every request, as AWS does under a burst."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
            b"</Error><RequestId>1</RequestId></ErrorResponse>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_aws_calls_and_throttles_are_counted(aws_clients: AwsClients) -> None:
    calls, throttles = "lakeplane_aws_calls_total", "lakeplane_aws_throttles_total"
    before = scrape(Client())
    aws_clients.client("sts").get_caller_identity()  # the emulator answers

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ThrottlingSts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        throttled = AwsClients(
            AwsConfig(endpoint_url=f"http://127.0.0.1:{server.server_port}", max_attempts=2)
        )
        with pytest.raises(ClientError):
            throttled.client("sts").get_caller_identity()
    finally:
        server.shutdown()
        server.server_close()

    after = scrape(Client())
    ok = {"service": "sts", "operation": "GetCallerIdentity", "outcome": "ok"}
    assert value(after, calls, **ok) == value(before, calls, **ok) + 1
    limited = {**ok, "outcome": "throttled"}
    assert value(after, calls, **limited) == value(before, calls, **limited) + 1
    op = {"service": "sts", "operation": "GetCallerIdentity"}
    # botocore's max_attempts counts retries: the first attempt and two retries, all throttled,
    # each counted, for one call.
    assert value(after, throttles, **op) == value(before, throttles, **op) + 3
