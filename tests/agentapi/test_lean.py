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


def _presence_sent_at(agent: Agent):
    from controlplane.agentapi.models import AgentPresence

    return (
        AgentPresence.objects.filter(compute_plane_id=agent.plane.pk)
        .values_list("heartbeat_sent_at", flat=True)
        .first()
    )


def test_on_postgresql_a_heartbeat_is_one_statement(agent: Agent) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement heartbeat is PostgreSQL's")
    assert agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json").status_code == 200
    body = heartbeat_body(agent)
    with CaptureQueriesContext(connection) as queries:
        response = agent.client.post(HEARTBEAT, body, format="json")
    assert response.status_code == 200
    assert response.json()["credential"] is None
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] != "SELECT 1"]
    assert len(statements) == 1, statements
    assert _presence_sent_at(agent).isoformat() == body["sent_at"]


def test_a_revoked_credential_writes_nothing_and_gets_401(agent: Agent) -> None:
    from controlplane.agentapi import services
    from controlplane.core.audit import Actor

    assert agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json").status_code == 200
    before = _presence_sent_at(agent)
    services.revoke_agent_credentials(agent.plane, actor=Actor.system_actor("test"))
    response = agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json")
    assert response.status_code == 401
    assert _presence_sent_at(agent) == before


def test_a_heartbeat_late_in_the_credentials_life_brings_a_new_one(agent: Agent, settings) -> None:
    from datetime import timedelta

    from controlplane.agentapi.models import AgentCredential

    assert agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json").status_code == 200
    lifetime = timedelta(seconds=settings.LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS)
    AgentCredential.objects.filter(compute_plane_id=agent.plane.pk).update(
        expires_at=timezone.now() + lifetime / 4
    )
    body = heartbeat_body(agent)
    response = agent.client.post(HEARTBEAT, body, format="json")
    assert response.status_code == 200
    assert response.json()["credential"]["credential"] != agent.secret
    assert _presence_sent_at(agent).isoformat() == body["sent_at"]


def test_on_postgresql_a_status_report_is_one_statement_and_replays_stay_replays(
    agent: Agent,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from controlplane.agentapi.models import ObservedState

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement status report is PostgreSQL's")
    assert agent.client.post(HEARTBEAT, heartbeat_body(agent), format="json").status_code == 200
    body = status_body(agent, uuid.uuid4().hex)
    with CaptureQueriesContext(connection) as queries:
        first = agent.client.post(STATUS, body, format="json")
    assert first.status_code == 200
    # One statement (the apps' listeners run on commit, which this test's transaction defers).
    statements = [q["sql"] for q in queries.captured_queries if q["sql"] != "SELECT 1"]
    assert len(statements) == 1, statements
    observed = ObservedState.objects.get(compute_plane_id=agent.plane.pk)
    assert observed.document["report_id"] == body["report_id"]
    replay = agent.client.post(STATUS, body, format="json")
    assert replay.content == first.content
    assert replay.headers["Lakeplane-Replayed"] == "true"
