"""The lean heartbeat/status entry points answer exactly as the DRF views they stand in for.

The usual request is served without DRF (controlplane/agentapi/api/views.py); anything else is
handed to the DRF view. These tests send the same requests through both and compare.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory
from django.utils import timezone

from controlplane.agentapi.api import views
from tests.agentapi.conftest import HEARTBEAT, STATUS, Agent

pytestmark = pytest.mark.django_db

COMPARED_HEADERS = ("Content-Type", "Vary", "Allow", "Lakeplane-Replayed", "WWW-Authenticate")


def heartbeat_body(agent: Agent) -> dict:
    return {
        "agent_id": agent.agent_id,
        "agent_version": "0.1.0",
        "sent_at": timezone.now().isoformat(),
        "applied_version": 1,
    }


def status_body(agent: Agent, report_id: str) -> dict:
    return {
        "agent_id": agent.agent_id,
        "report_id": report_id,
        "applied_version": 1,
        "sent_at": timezone.now().isoformat(),
        "clusters": [],
    }


def through_drf(view, path: str, agent: Agent, body: dict, **headers: str):
    """The same request, answered by the DRF view directly (no lean path)."""
    import json

    request = RequestFactory().post(
        path,
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {agent.secret}", **headers},
    )
    response = view(request)
    response.render()
    return response


def headers_of(response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in COMPARED_HEADERS}


def test_heartbeat_answer_is_byte_identical(agent: Agent) -> None:
    lean = agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json")
    drf = through_drf(views.HeartbeatView.as_view(), HEARTBEAT, agent, heartbeat_body(agent))
    assert lean.status_code == drf.status_code == 200
    assert lean.content == drf.content
    assert headers_of(lean) == headers_of(drf)
    assert lean.headers["Allow"] == "POST, OPTIONS"


def test_status_answer_and_replay_are_identical(agent: Agent) -> None:
    report_id = uuid.uuid4().hex
    first = agent.client.post(STATUS, status_body(agent, report_id), format="json")
    assert first.status_code == 200, first.content
    assert "Lakeplane-Replayed" not in first.headers
    fresh = through_drf(
        views.StatusView.as_view(), STATUS, agent, status_body(agent, uuid.uuid4().hex)
    )
    assert headers_of(first) == headers_of(fresh)
    assert set(first.json()) == set(fresh.data)

    lean_replay = agent.client.post(STATUS, status_body(agent, report_id), format="json")
    drf_replay = through_drf(
        views.StatusView.as_view(), STATUS, agent, status_body(agent, report_id)
    )
    assert lean_replay.content == drf_replay.content == first.content
    assert headers_of(lean_replay) == headers_of(drf_replay)
    assert lean_replay.headers["Lakeplane-Replayed"] == "true"


@pytest.mark.parametrize("path", [HEARTBEAT, STATUS])
def test_anything_unusual_is_answered_by_drf(agent: Agent, path: str) -> None:
    body = heartbeat_body(agent) if path == HEARTBEAT else status_body(agent, uuid.uuid4().hex)
    # No credential: 401 with the agent realm.
    anonymous = agent.client.__class__().post(path, body, format="json")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="lakeplane-agent"'
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    # Invalid body: 400 problem+json with field errors.
    invalid = agent.client.post(path, {"agent_id": agent.agent_id}, format="json")
    assert invalid.status_code == 400
    assert "sent_at" in invalid.json()["errors"]
    # Another agent's id: 403.
    foreign = agent.client.post(path, {**body, "agent_id": "agt_someoneelse"}, format="json")
    assert foreign.status_code == 403
    # A client that does not accept JSON: DRF's content negotiation answers 406.
    html_only = agent.client.post(path, body, format="json", HTTP_ACCEPT="text/html")
    assert html_only.status_code == 406
    # Another method: 405 with Allow.
    got = agent.client.get(path)
    assert got.status_code == 405
    assert got.headers["Allow"] == "POST, OPTIONS"
