"""Heartbeat, status and usage reports: effects, idempotency, staleness."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.agentapi import services
from controlplane.agentapi.models import AgentReport, ObservedState, UsageRecord
from controlplane.clusters.models import Cluster
from tests.agentapi.conftest import HEARTBEAT, STATUS, USAGE, Agent
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def cluster_of(agent: Agent) -> str:
    """A cluster on the agent's plane (an agent reports on its own plane's clusters only)."""
    existing = Cluster.objects.filter(compute_plane=agent.plane).first()
    if existing is None:
        existing = ClusterFactory(compute_plane=agent.plane, organization=agent.plane.organization)
    return existing.id


def status_report(agent: Agent, report_id: str, *, ready: int, sent_at=None) -> dict:
    sent_at = (sent_at or timezone.now()).isoformat()
    return {
        "agent_id": agent.agent_id,
        "report_id": report_id,
        "applied_version": 3,
        "sent_at": sent_at,
        "clusters": [
            {
                "id": cluster_of(agent),
                "phase": "running",
                "coordinator_ready": True,
                "workers_ready": ready,
                "workers_desired": 4,
                "observed_at": sent_at,
            }
        ],
    }


def usage_report(agent: Agent, report_id: str, nodes: int) -> dict:
    end = timezone.now().replace(microsecond=0)
    cluster_id = cluster_of(agent)
    return {
        "agent_id": agent.agent_id,
        "report_id": report_id,
        "period_start": (end - timedelta(minutes=5)).isoformat(),
        "period_end": end.isoformat(),
        "samples": [
            {
                "cluster_id": cluster_id,
                "instance_type": "r6i.2xlarge",
                "nodes": nodes,
                "seconds": 300,
            },
            {
                "cluster_id": cluster_id,
                "instance_type": "m6i.xlarge",
                "nodes": 1,
                "seconds": 300,
            },
        ],
    }


def test_a_status_report_is_stored_and_a_replay_changes_nothing(agent: Agent):
    report_id = uuid.uuid4().hex
    first = agent.client.post(STATUS, status_report(agent, report_id, ready=4), format="json")
    assert first.status_code == 200
    observed = ObservedState.objects.get(compute_plane=agent.plane)
    assert observed.document["clusters"][0]["workers_ready"] == 4

    # Same report id, different content (a buggy or malicious replay): nothing changes.
    replay = agent.client.post(STATUS, status_report(agent, report_id, ready=1), format="json")

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay["Lakeplane-Replayed"] == "true"
    observed.refresh_from_db()
    assert observed.document["clusters"][0]["workers_ready"] == 4
    assert AgentReport.objects.filter(compute_plane=agent.plane, kind="status").count() == 1


def test_an_older_status_report_arriving_late_does_not_overwrite_a_newer_one(agent: Agent):
    now = timezone.now()
    newer = status_report(agent, uuid.uuid4().hex, ready=4, sent_at=now)
    older = status_report(agent, uuid.uuid4().hex, ready=2, sent_at=now - timedelta(seconds=30))
    assert agent.client.post(STATUS, newer, format="json").status_code == 200
    assert agent.client.post(STATUS, older, format="json").status_code == 200

    observed = ObservedState.objects.get(compute_plane=agent.plane)
    assert observed.document["clusters"][0]["workers_ready"] == 4
    assert AgentReport.objects.filter(compute_plane=agent.plane, kind="status").count() == 2


def test_status_reports_reach_listeners_once(agent: Agent, django_capture_on_commit_callbacks):
    received = []

    def listener(sender, reports, **kwargs):
        received.append([(plane_id, report.report_id) for plane_id, report in reports])

    services.status_reported.connect(listener)
    try:
        body = status_report(agent, "report-0001", ready=4)
        with django_capture_on_commit_callbacks(execute=True):
            agent.client.post(STATUS, body, format="json")
            agent.client.post(STATUS, body, format="json")
    finally:
        services.status_reported.disconnect(listener)
    assert received == [[(agent.plane.id, "report-0001")]]


def test_a_batch_of_status_reports_is_one_send_and_none_is_no_send(agent: Agent):
    from computeplane_agent import contract

    received = []

    def listener(sender, reports, **kwargs):
        received.append([(plane_id, report.report_id) for plane_id, report in reports])

    first = contract.StatusReport.model_validate(status_report(agent, "report-0001", ready=1))
    second = contract.StatusReport.model_validate(status_report(agent, "report-0002", ready=2))
    services.status_reported.connect(listener)
    try:
        services.announce_status_batch([])
        services.announce_status_batch([("cp_a", first), ("cp_b", second)])
    finally:
        services.status_reported.disconnect(listener)
    assert received == [[("cp_a", "report-0001"), ("cp_b", "report-0002")]]


def test_usage_is_recorded_per_instance_type_and_a_replay_adds_nothing(agent: Agent):
    report_id = uuid.uuid4().hex
    first = agent.client.post(USAGE, usage_report(agent, report_id, nodes=4), format="json")
    assert first.status_code == 200
    rows = UsageRecord.objects.filter(compute_plane=agent.plane)
    assert sorted((r.instance_type, r.nodes, r.seconds) for r in rows) == [
        ("m6i.xlarge", 1, 300),
        ("r6i.2xlarge", 4, 300),
    ]

    replay = agent.client.post(USAGE, usage_report(agent, report_id, nodes=9), format="json")

    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert UsageRecord.objects.filter(compute_plane=agent.plane).count() == 2
    assert not UsageRecord.objects.filter(nodes=9).exists()


def test_the_same_report_id_on_two_planes_is_two_reports(agent: Agent):
    from tests.agentapi.conftest import register
    from tests.factories import ComputePlaneFactory

    other = register(ComputePlaneFactory())
    for a in (agent, other):
        response = a.client.post(USAGE, usage_report(a, "shared-id-1", nodes=2), format="json")
        assert response.status_code == 200
        assert "Lakeplane-Replayed" not in response
    assert UsageRecord.objects.count() == 4


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (USAGE, {"report_id": "x"}, "report_id"),
        (STATUS, {"report_id": "report-0001", "clusters": "no"}, "clusters"),
        (HEARTBEAT, {"agent_id": "agt_x", "sent_at": "yesterday"}, "sent_at"),
    ],
)
def test_bad_reports_are_400_with_field_errors(agent: Agent, path, body, field):
    response = agent.client.post(path, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_report_with_free_form_extra_fields_is_refused(agent: Agent):
    body = status_report(agent, "report-0002", ready=1)
    body["rows"] = [{"customer": "data"}]
    response = agent.client.post(STATUS, body, format="json")
    assert response.status_code == 400
    assert "rows" in response.json()["errors"]


def heartbeat_body(agent: Agent, version: str, sent_at) -> dict:
    return {"agent_id": agent.agent_id, "agent_version": version, "sent_at": sent_at.isoformat()}


def test_heartbeat_marks_connected_and_a_replay_or_late_one_changes_nothing(agent: Agent):
    sent = timezone.now()
    response = agent.client.post(HEARTBEAT, heartbeat_body(agent, "0.2.0", sent), format="json")
    assert response.status_code == 200
    assert response.json()["heartbeat_seconds"] > 0
    agent.plane.refresh_from_db()
    assert (agent.plane.agent_status, agent.plane.agent_version) == ("connected", "0.2.0")
    seen = agent.plane.agent_last_seen_at

    replay = agent.client.post(HEARTBEAT, heartbeat_body(agent, "0.9.9", sent), format="json")
    late = agent.client.post(
        HEARTBEAT, heartbeat_body(agent, "0.0.1", sent - timedelta(minutes=1)), format="json"
    )

    assert replay.json() == response.json()
    assert late.status_code == 200
    agent.plane.refresh_from_db()
    assert agent.plane.agent_version == "0.2.0"
    assert agent.plane.agent_last_seen_at == seen


def test_an_agent_without_heartbeats_becomes_stale_and_shows_it(agent: Agent, make_caller):
    owner = make_caller(agent.plane.organization)
    url = f"/api/v1/orgs/{agent.plane.organization.slug}/compute-planes/{agent.plane.id}"
    agent.client.post(HEARTBEAT, heartbeat_body(agent, "0.2.0", timezone.now()), format="json")
    assert owner.client.get(url).json()["agent"]["status"] == "connected"

    threshold = services.stale_threshold()
    assert services.mark_stale_agents(now=timezone.now() + threshold / 2) == 0
    assert services.mark_stale_agents(now=timezone.now() + threshold + timedelta(seconds=1)) == 1

    agent_view = owner.client.get(url).json()["agent"]
    assert agent_view["status"] == "stale"
    assert agent_view["version"] == "0.2.0"

    # The next heartbeat brings it back.
    agent.client.post(HEARTBEAT, heartbeat_body(agent, "0.2.0", timezone.now()), format="json")
    assert owner.client.get(url).json()["agent"]["status"] == "connected"


def test_housekeeping_prunes_report_records_after_the_replay_window(agent: Agent):
    agent.client.post(USAGE, usage_report(agent, "old-report-1", nodes=2), format="json")
    later = timezone.now() + services.REPORT_RETENTION + timedelta(minutes=1)
    assert services.prune_reports(now=later) == 1
    assert UsageRecord.objects.filter(compute_plane=agent.plane).count() == 2
