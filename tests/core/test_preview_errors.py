"""Errors raised before a view runs (Django's own checks) are problem+json too, and a client's
mistake is logged without a traceback."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from controlplane.core.roles import Role

pytestmark = pytest.mark.django_db


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_a_too_big_body_is_a_problem_and_logs_no_traceback(org, make_caller, caplog, settings):
    caller = make_caller(org, Role.OWNER, via="token")
    body = json.dumps({"name": "x" * (3 * 1024 * 1024)})
    with caplog.at_level(logging.INFO):
        response = caller.client.post(
            f"/api/v1/orgs/{org.slug}/cloud-accounts", body, content_type="application/json"
        )
    assert response.status_code in (400, 413)
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code
    _no_tracebacks(caplog)


def test_a_bad_host_header_is_a_problem(caplog):
    # CommonMiddleware rejects the host before any view runs.
    with caplog.at_level(logging.INFO):
        response = Client(HTTP_HOST="evil.example").get("/api/v1/me")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("bad-request")
    _no_tracebacks(caplog)
