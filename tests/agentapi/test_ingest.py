"""Write-behind ingestion of heartbeats and status reports (controlplane/agentapi/ingest.py).

PostgreSQL only (SQLite keeps one write per request). The HTTP tests run the product's
default — the per-process buffer and its flushing thread, which writes with its own database
connection — so they use committed data (``transactional_db``) and wait for the flush. The
statement tests drive a buffer without a thread and flush it themselves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from computeplane_agent import contract
from controlplane.agentapi import ingest, services
from controlplane.agentapi.credcache import credentials
from controlplane.agentapi.models import (
    AgentCredential,
    AgentPresence,
    AgentReport,
    ObservedState,
)
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.audit import Actor
from tests.agentapi.conftest import DESIRED, HEARTBEAT, STATUS, Agent, register
from tests.factories import ClusterFactory, ComputePlaneFactory


@pytest.fixture(autouse=True)
def _postgresql_only() -> Iterator[None]:
    if connection.vendor != "postgresql":
        pytest.skip("write-behind ingestion is PostgreSQL's; SQLite writes each report at once")
    credentials.clear()
    yield
    credentials.clear()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("not flushed in time")


def beat(agent: Agent, sent_at: datetime | None = None) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "agent_version": "0.2.0",
        "sent_at": (sent_at or timezone.now()).isoformat(),
        "applied_version": 3,
    }


def status(agent: Agent, clusters: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    return {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "applied_version": 3,
        "sent_at": timezone.now().isoformat(),
        "clusters": clusters or [],
        **extra,
    }


def cluster_status(cluster: Cluster, workers: int) -> dict[str, Any]:
    return {
        "id": cluster.pk,
        "phase": "running",
        "coordinator_ready": True,
        "workers_ready": workers,
        "workers_desired": workers,
        "observed_at": timezone.now().isoformat(),
    }


def written(queries: CaptureQueriesContext) -> list[str]:
    """The statements of a flush, without the savepoints of the test's own transaction."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def presence(agent: Agent) -> AgentPresence | None:
    return AgentPresence.objects.filter(compute_plane_id=agent.plane.pk).first()


# --- through HTTP, with the flushing thread ---------------------------------------------------


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_a_known_agents_heartbeat_costs_no_query_and_is_written_by_the_flush() -> None:
    agent = register(ComputePlaneFactory())
    first = agent.client.post(HEARTBEAT, beat(agent), format="json")
    assert first.status_code == 200
    body = beat(agent)
    with CaptureQueriesContext(connection) as queries:
        response = agent.client.post(HEARTBEAT, body, format="json")
    assert response.status_code == 200
    assert response.json() == {**first.json(), "credential": None}
    assert queries.captured_queries == []
    sent_at = datetime.fromisoformat(body["sent_at"])
    stored = wait_for(lambda: (p := presence(agent)) and p.heartbeat_sent_at == sent_at and p)
    assert stored.applied_version == 3
    plane = ComputePlane.objects.get(pk=agent.plane.pk)
    assert (plane.agent_status, plane.agent_version) == ("connected", "0.2.0")


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_a_status_report_is_accepted_applied_once_and_reaches_the_listeners() -> None:
    plane = ComputePlaneFactory()
    agent = register(plane)
    running, gone = ClusterFactory(compute_plane=plane), ClusterFactory(compute_plane=plane)
    agent.client.post(HEARTBEAT, beat(agent), format="json")  # authenticates in full once
    body = status(agent, [cluster_status(running, 4)])
    with CaptureQueriesContext(connection) as queries:
        response = agent.client.post(STATUS, body, format="json")
    assert response.status_code == 202
    assert response.json()["report_id"] == body["report_id"]
    # The first mention of a cluster costs one lookup of its plane (agentapi/scope.py).
    assert len(queries.captured_queries) == 1
    assert '"clusters_cluster"' in queries.captured_queries[0]["sql"]
    wait_for(lambda: ObservedState.objects.filter(compute_plane_id=plane.pk).exists())
    assert (
        ObservedState.objects.get(compute_plane_id=plane.pk).document["report_id"]
        == (body["report_id"])
    )
    running.refresh_from_db()
    gone.refresh_from_db()
    assert (running.observed_phase, running.workers_ready) == ("running", 4)
    assert gone.observed_phase == "absent"

    # A replay after the flush records and applies nothing.
    replay = agent.client.post(STATUS, body, format="json")
    assert replay.status_code == 202
    ingest.buffer.flush()
    wait_for(lambda: ingest.buffer.pending() == 0)
    assert AgentReport.objects.filter(report_id=body["report_id"]).count() == 1

    # The next report about the same cluster costs no query at all.
    with CaptureQueriesContext(connection) as queries:
        response = agent.client.post(
            STATUS, status(agent, [cluster_status(running, 3)]), format="json"
        )
    assert response.status_code == 202
    assert queries.captured_queries == []


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_a_credential_revoked_elsewhere_writes_nothing_and_the_long_poll_refuses_it() -> None:
    agent = register(ComputePlaneFactory())
    agent.client.post(HEARTBEAT, beat(agent), format="json")
    wait_for(lambda: (p := presence(agent)) and p.heartbeat_sent_at)
    before = presence(agent).heartbeat_sent_at
    # Revoked by another web process: this one still remembers the credential.
    AgentCredential.objects.filter(compute_plane_id=agent.plane.pk).update(
        revoked_at=timezone.now()
    )
    assert agent.client.post(HEARTBEAT, beat(agent), format="json").status_code == 200
    assert agent.client.post(STATUS, status(agent), format="json").status_code == 202
    ingest.buffer.flush()
    time.sleep(0.5)
    assert presence(agent).heartbeat_sent_at == before
    assert not ObservedState.objects.filter(compute_plane_id=agent.plane.pk).exists()
    assert agent.client.get(DESIRED, {"wait": 0}).status_code == 401
    # The flush refused its reports, so this process no longer trusts it from memory.
    assert agent.client.post(HEARTBEAT, beat(agent), format="json").status_code == 401
    assert agent.client.post(STATUS, status(agent), format="json").status_code == 401


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_revoking_in_this_process_refuses_the_next_report_at_once() -> None:
    agent = register(ComputePlaneFactory())
    assert agent.client.post(HEARTBEAT, beat(agent), format="json").status_code == 200
    services.revoke_agent_credentials(agent.plane, actor=Actor.system_actor("test"))
    assert agent.client.post(HEARTBEAT, beat(agent), format="json").status_code == 401
    assert agent.client.post(STATUS, status(agent), format="json").status_code == 401


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_a_foreign_agent_id_is_403_even_for_a_known_credential() -> None:
    agent, other = register(ComputePlaneFactory()), register(ComputePlaneFactory())
    agent.client.post(HEARTBEAT, beat(agent), format="json")
    assert agent.client.post(HEARTBEAT, beat(other), format="json").status_code == 403
    assert agent.client.post(STATUS, status(other), format="json").status_code == 403


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_rotation_and_a_full_buffer_take_the_synchronous_path(settings: Any) -> None:
    agent = register(ComputePlaneFactory())
    agent.client.post(HEARTBEAT, beat(agent), format="json")
    settings.LAKEPLANE_AGENT_INGEST_MAX_PENDING = 0
    body = status(agent)
    full = agent.client.post(STATUS, body, format="json")
    assert full.status_code == 200  # written at once, as without the buffer
    assert (
        ObservedState.objects.get(compute_plane_id=agent.plane.pk).document["report_id"]
        == (body["report_id"])
    )
    settings.LAKEPLANE_AGENT_INGEST_MAX_PENDING = 100
    lifetime = timedelta(seconds=settings.LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS)
    AgentCredential.objects.filter(compute_plane_id=agent.plane.pk).update(
        expires_at=timezone.now() + lifetime / 4
    )
    credentials.clear()  # as after the cache's lifetime
    response = agent.client.post(HEARTBEAT, beat(agent), format="json")
    assert response.json()["credential"]["credential"] != agent.secret


# --- the statements, with a buffer flushed by the test ---------------------------------------
def known_credential(agent: Agent) -> AgentCredential:
    # As the request side does before buffering (and which stamps first use).
    return services.authenticate_credential(agent.secret)


def pending_beat(agent: Agent, sent_at: datetime, received_at: datetime | None = None):
    credential = known_credential(agent)
    heartbeat = contract.Heartbeat.model_validate(beat(agent, sent_at))
    return ingest.PendingHeartbeat(
        credential.pk, credential.digest, agent.plane.pk, received_at or timezone.now(), heartbeat
    )


def pending_status(agent: Agent, report: dict[str, Any], received_at: datetime | None = None):
    credential = known_credential(agent)
    parsed = contract.StatusReport.model_validate(report)
    now = received_at or timezone.now()
    return ingest.PendingStatus(
        credential.pk,
        credential.digest,
        agent.plane.pk,
        now,
        parsed,
        services.report_result(parsed.report_id, now),
    )


@pytest.mark.django_db
def test_a_flush_keeps_each_planes_newest_heartbeat_and_checks_every_credential() -> None:
    buffer = ingest.IngestBuffer(autostart=False)
    good, revoked, late = (register(ComputePlaneFactory()) for _ in range(3))
    now = timezone.now()
    assert buffer.add_heartbeat(pending_beat(good, now - timedelta(seconds=2)))
    assert buffer.add_heartbeat(pending_beat(good, now))  # newer: replaces it
    assert buffer.add_heartbeat(pending_beat(good, now - timedelta(seconds=1)))  # older: ignored
    assert buffer.add_heartbeat(pending_beat(revoked, now))
    AgentCredential.objects.filter(compute_plane_id=revoked.plane.pk).update(revoked_at=now)
    AgentPresence.objects.filter(compute_plane_id=late.plane.pk).update(
        heartbeat_sent_at=now + timedelta(seconds=5)
    )
    assert buffer.add_heartbeat(pending_beat(late, now))  # older than the stored one
    with CaptureQueriesContext(connection) as queries:
        result = buffer.flush()
    # The flush lock, then one statement for every heartbeat.
    assert len(written(queries)) == 2, written(queries)
    assert (result.heartbeats, result.heartbeats_applied, result.failed) == (3, 1, 0)
    assert presence(good).heartbeat_sent_at == now
    assert presence(revoked).heartbeat_sent_at is None
    assert presence(late).heartbeat_sent_at == now + timedelta(seconds=5)
    assert buffer.pending() == 0


@pytest.mark.django_db
def test_a_credential_that_expired_before_the_report_arrived_writes_nothing() -> None:
    buffer = ingest.IngestBuffer(autostart=False)
    agent = register(ComputePlaneFactory())
    now = timezone.now()
    buffer.add_heartbeat(pending_beat(agent, now, received_at=now + timedelta(seconds=1)))
    buffer.add_status(pending_status(agent, status(agent), received_at=now + timedelta(seconds=1)))
    AgentCredential.objects.filter(compute_plane_id=agent.plane.pk).update(expires_at=now)
    result = buffer.flush()
    assert (result.heartbeats_applied, result.statuses_recorded) == (0, 0)


@pytest.mark.django_db
def test_a_status_flush_records_every_report_applies_each_planes_newest_and_skips_replays() -> None:
    buffer = ingest.IngestBuffer(autostart=False)
    one, two = register(ComputePlaneFactory()), register(ComputePlaneFactory())
    now = timezone.now()
    older = status(one, sent_at=(now - timedelta(seconds=1)).isoformat())
    newer = status(one, sent_at=now.isoformat())
    replayed = status(two, sent_at=now.isoformat())
    services.record_status(
        AgentCredential.objects.get(compute_plane_id=two.plane.pk),
        contract.StatusReport.model_validate(replayed),
    )
    stale = status(two, sent_at=(now - timedelta(minutes=1)).isoformat())
    for report, agent in ((newer, one), (older, one), (older, one), (replayed, two), (stale, two)):
        buffer.add_status(pending_status(agent, report))
    announced: list[tuple[str, contract.StatusReport]] = []

    def listener(sender: Any, *, reports: Any, **kwargs: Any) -> None:
        announced.extend(reports)

    services.status_reported.connect(listener)
    try:
        result = buffer.flush()
    finally:
        services.status_reported.disconnect(listener)
    # newer + older (one), stale (two): the replay and the duplicate are not recorded again.
    assert (result.statuses, result.statuses_recorded, result.statuses_applied) == (4, 3, 1)
    assert [(plane, r.report_id) for plane, r in announced] == [(one.plane.pk, newer["report_id"])]
    documents = dict(ObservedState.objects.values_list("compute_plane_id", "document"))
    assert documents[one.plane.pk]["report_id"] == newer["report_id"]
    assert documents[two.plane.pk]["report_id"] == replayed["report_id"]


@pytest.mark.django_db
def test_a_flush_costs_the_same_statements_for_one_plane_and_for_fifty() -> None:
    def statements_for(planes: int) -> int:
        buffer = ingest.IngestBuffer(autostart=False)
        for _ in range(planes):
            plane = ComputePlaneFactory()
            ClusterFactory(compute_plane=plane)
            agent = register(plane)
            cluster = Cluster.objects.get(compute_plane=plane)
            buffer.add_heartbeat(pending_beat(agent, timezone.now()))
            buffer.add_status(pending_status(agent, status(agent, [cluster_status(cluster, 2)])))
        with CaptureQueriesContext(connection) as queries:
            result = buffer.flush()
        assert result.statuses_applied == planes
        return len(written(queries))

    assert statements_for(1) == statements_for(50)
