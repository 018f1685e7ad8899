"""The gateway's reports through the agent API (query records, wake requests) and the org-wide
query history: idempotent, foreign clusters refused, query text only where a plane keeps it."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.clusters.models import Cluster
from controlplane.core.models import Operation
from controlplane.core.roles import Role
from controlplane.gateways import ingest
from controlplane.gateways.models import QueryRecord
from tests.agentapi.conftest import register
from tests.factories import ClusterFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

QUERIES = "/api/agent/v1/queries"
WAKE = "/api/agent/v1/wake"
PLANTED = "SELECT 'planted-secret-7f3a' FROM tpch.tiny.lineitem"


@pytest.fixture
def setup(owner):
    plane = ComputePlaneFactory(organization=owner.org)
    etl = ClusterFactory(organization=owner.org, compute_plane=plane, name="etl")
    adhoc = ClusterFactory(organization=owner.org, compute_plane=plane, name="adhoc")
    return plane, etl, adhoc, register(plane)


def record(query_id: str, cluster_id: str | None, **extra) -> dict:
    now = timezone.now()
    return {
        "query_id": query_id,
        "cluster_id": cluster_id,
        "routing_group": "default",
        "user": "alice",
        "source": "trino-python-client",
        "state": "FINISHED",
        "queued_ms": 3,
        "elapsed_ms": 120,
        "bytes_in": 512,
        "bytes_out": 4096,
        "started_at": (now - timedelta(seconds=1)).isoformat(),
        "finished_at": now.isoformat(),
        **extra,
    }


def send(agent, records: list[dict], report_id: str | None = None):
    body = {
        "agent_id": agent.agent_id,
        "report_id": report_id or uuid.uuid4().hex,
        "queries": records,
    }
    return agent.client.post(QUERIES, body, format="json")


def test_records_are_stored_once_and_foreign_clusters_refused(owner, setup):
    _plane, etl, adhoc, agent = setup
    foreign = ClusterFactory(organization=OrganizationFactory())
    own_org_elsewhere = ClusterFactory(organization=owner.org)
    records = [
        record("q1", etl.id),
        record("q2", adhoc.id, state="FAILED", error_name="SYNTAX_ERROR"),
        record("q3", foreign.id),
        record("q4", own_org_elsewhere.id),
        record("q5", None, state="FAILED", error_name="NO_CLUSTER"),
    ]
    response = send(agent, records, report_id="report-0001")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stored"] == 3
    assert [r["query_id"] for r in body["refused"]] == ["q3", "q4"]
    # A retry of the same report, or a later report repeating records, stores nothing twice.
    again = send(agent, records, report_id="report-0001").json()
    assert again["stored"] == 0
    assert again["already_stored"] == 3
    assert send(agent, [record("q1", etl.id)]).json()["already_stored"] == 1
    assert QueryRecord.objects.count() == 3
    stored = QueryRecord.objects.get(query_id="q2")
    assert stored.organization_id == owner.org.id
    assert stored.cluster_id == adhoc.id
    assert stored.error_name == "SYNTAX_ERROR"
    assert (stored.bytes_in, stored.bytes_out) == (512, 4096)


def test_bad_reports_are_400_with_fields(setup):
    _, etl, _, agent = setup
    response = send(agent, [record("q 1", etl.id)])
    assert response.status_code == 400
    assert "queries.0.query_id" in response.json()["errors"]
    response = send(agent, [record("q1", etl.id, state="RUNNING")])
    assert response.status_code == 400
    assert "queries.0.state" in response.json()["errors"]


def test_query_text_never_lands_unless_turned_on(owner, setup, caplog):
    plane, etl, _, agent = setup
    base = f"/api/v1/orgs/{owner.org.slug}"
    caplog.set_level(logging.DEBUG)
    assert send(agent, [record("q1", etl.id, query_text=PLANTED)]).status_code == 200
    assert QueryRecord.objects.get(query_id="q1").query_text == ""
    assert not QueryRecord.objects.filter(query_text__contains="planted").exists()
    listed = owner.client.get(f"{base}/queries").content.decode()
    assert "planted-secret" not in listed
    assert "planted-secret" not in caplog.text

    # An admin turns it on for this plane: text is kept (for its days), then turned off: gone.
    response = owner.client.patch(
        f"{base}/compute-planes/{plane.id}/gateway",
        {"query_text_retention": {"enabled": True, "days": 3}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert send(agent, [record("q2", etl.id, query_text=PLANTED)]).status_code == 200
    results = owner.client.get(f"{base}/queries").json()["results"]
    assert {r["query_id"]: r["query_text"] for r in results} == {"q1": "", "q2": PLANTED}
    QueryRecord.objects.filter(query_id="q2").update(finished_at=timezone.now() - timedelta(days=4))
    assert ingest.expire_text(plane.id, 3) == 1
    QueryRecord.objects.filter(query_id="q2").update(query_text=PLANTED)
    owner.client.patch(
        f"{base}/compute-planes/{plane.id}/gateway",
        {"query_text_retention": {"enabled": False}},
        format="json",
    )
    assert not QueryRecord.objects.exclude(query_text="").exists()


def test_the_history_filters_and_pages(owner, setup, make_caller):
    _plane, etl, adhoc, agent = setup
    now = timezone.now()
    records = [
        record(
            f"q{i}",
            etl.id if i % 2 else adhoc.id,
            user="bob" if i < 3 else "alice",
            state="FAILED" if i == 4 else "FINISHED",
            started_at=(now - timedelta(hours=10 - i)).isoformat(),
        )
        for i in range(6)
    ]
    assert send(agent, records).status_code == 200
    viewer = make_caller(owner.org, Role.VIEWER)
    base = f"/api/v1/orgs/{owner.org.slug}/queries"

    def ids(query: str) -> list[str]:
        response = viewer.client.get(f"{base}{query}")
        assert response.status_code == 200, response.content
        return sorted(r["query_id"] for r in response.json()["results"])

    assert ids("") == [f"q{i}" for i in range(6)]
    assert ids(f"?cluster={etl.id}") == ["q1", "q3", "q5"]
    assert ids("?user=bob") == ["q0", "q1", "q2"]
    assert ids("?state=failed") == ["q4"]
    since = (now - timedelta(hours=6, minutes=30)).isoformat().replace("+00:00", "Z")
    assert ids(f"?since={since}") == ["q4", "q5"]
    assert ids(f"?user=alice&cluster={etl.id}") == ["q3", "q5"]

    page = viewer.client.get(f"{base}?limit=4").json()
    assert len(page["results"]) == 4
    rest = viewer.client.get(page["next"]).json()
    assert len(rest["results"]) == 2
    assert rest["next"] is None

    for query, field in (
        ("?state=RUNNING", "state"),
        ("?since=yesterday", "since"),
        ("?limit=0", "limit"),
    ):
        response = viewer.client.get(f"{base}{query}")
        assert response.status_code == 400
        assert field in response.json()["errors"]

    # Another organization sees none of it.
    stranger = make_caller(OrganizationFactory(), Role.OWNER)
    assert stranger.client.get(f"/api/v1/orgs/{stranger.org.slug}/queries").json()["results"] == []
    assert stranger.client.get(base).status_code == 404


def test_the_history_list_costs_a_fixed_number_of_queries(
    owner, setup, django_assert_max_num_queries
):
    _, etl, _, agent = setup
    send(agent, [record(f"q{i}", etl.id) for i in range(150)])
    url = f"/api/v1/orgs/{owner.org.slug}/queries?limit=200"
    owner.client.get(url)
    with django_assert_max_num_queries(4):
        assert len(owner.client.get(url).json()["results"]) == 150


# --- wake on query ------------------------------------------------------------------------------


def wake(agent, cluster_id: str):
    return agent.client.post(
        WAKE, {"agent_id": agent.agent_id, "cluster_id": cluster_id}, format="json"
    )


def test_a_stopped_cluster_is_started_once_however_many_replicas_ask(setup):
    _, etl, _, agent = setup
    Cluster.objects.filter(pk=etl.id).update(status="stopped")
    first = wake(agent, etl.id)
    assert first.status_code == 202, first.content
    assert first.json()["started"] is True
    assert first.json()["status"] == "starting"
    for _ in range(3):
        again = wake(agent, etl.id)
        assert again.status_code == 200
        assert again.json()["started"] is False
        assert again.json()["operation"] == first.json()["operation"]
    assert Operation.objects.filter(kind="cluster.start", target_id=etl.id).count() == 1
    assert Operation.objects.get(pk=first.json()["operation"]).kind == "cluster.start"


def test_wake_is_refused_with_a_reason(owner, setup):
    plane, etl, _, agent = setup
    other_plane_cluster = ClusterFactory(organization=owner.org, status="stopped")
    response = wake(agent, other_plane_cluster.id)
    assert response.status_code == 404
    assert "cluster_id" in response.json()["errors"]
    Cluster.objects.filter(pk=etl.id).update(status="failed")
    response = wake(agent, etl.id)
    assert response.status_code == 409
    assert "etl is failed" in response.json()["detail"]

    Cluster.objects.filter(pk=etl.id).update(status="stopped")
    owner.client.patch(
        f"/api/v1/orgs/{owner.org.slug}/compute-planes/{plane.id}/gateway",
        {"wake": {"enabled": False}},
        format="json",
    )
    response = wake(agent, etl.id)
    assert response.status_code == 409
    assert "turned off" in response.json()["detail"]
    assert not Operation.objects.filter(kind="cluster.start").exists()


def test_an_agent_speaks_for_its_own_plane_only(setup):
    _, etl, _, agent = setup
    other = register(ComputePlaneFactory())
    body = {"agent_id": agent.agent_id, "report_id": uuid.uuid4().hex, "queries": []}
    assert other.client.post(QUERIES, body, format="json").status_code in (401, 403)
    response = other.client.post(
        WAKE, {"agent_id": other.agent_id, "cluster_id": etl.id}, format="json"
    )
    assert response.status_code == 404
