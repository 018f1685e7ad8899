"""The agent's listener: the gateway's wakes and query records reach the control plane as contract
documents, outbound, with query text only when the plane allows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from computeplane_agent.client import HttpControlPlaneClient
from computeplane_agent.contract import GatewaySpec, QueryReport, WakeRequest
from computeplane_agent.gateway.config import parse_config
from computeplane_agent.gateway.server import AppThread, start_in_thread
from computeplane_agent.listener import Listener
from tests.agent.test_agent_loop import FakeControlPlane
from tests.gateway.coordinator import Coordinator

AGENT_ID = "agt_1"
CLUSTER = "cl_01hv0000000000000000000001"
PLANTED = "SELECT 'planted-text-4f1c' AS secret"


class Running:
    def __init__(self, plane: FakeControlPlane, query_text: bool = False) -> None:
        client = HttpControlPlaneClient(
            f"http://127.0.0.1:{plane.port}", credential="agent-credential-0123456789"
        )
        self.spec = GatewaySpec(enabled=True, query_text=query_text)
        self.listener = Listener(client, agent_id=AGENT_ID, gateway=lambda: self.spec)
        self.server = AppThread(self.listener.app(), name="agent-listener")
        self.url = self.server.url


@pytest.fixture
def plane() -> Iterator[FakeControlPlane]:
    server = FakeControlPlane()
    yield server
    server.close()


@pytest.fixture
def agent(plane: FakeControlPlane) -> Iterator[Running]:
    running = Running(plane)
    yield running
    running.server.stop()


@pytest.fixture
def coordinator() -> Iterator[Coordinator]:
    co = Coordinator("a")
    yield co
    co.stop()


def gateway_config(co: Coordinator, agent_url: str, *, query_text: bool) -> Any:
    cluster = {"id": CLUSTER, "name": "etl", "engine": "trino", "url": co.url, "state": "running"}
    return parse_config({
        "version": "v1", "groups": [{"name": "adhoc", "clusters": [cluster]}],
        "default_group": "adhoc", "agent_url": agent_url, "query_text": query_text,
        "health": {"interval_seconds": 60},
    })  # fmt: skip


def run(url: str, sql: str) -> str:
    headers = {"X-Trino-User": "alice", "X-Trino-Source": "bi"}
    doc = requests.post(f"{url}/v1/statement", data=sql, headers=headers, timeout=10).json()
    while "nextUri" in doc:
        doc = requests.get(doc["nextUri"], headers=headers, timeout=10).json()
    assert doc["stats"]["state"] == "FINISHED"
    return str(doc["id"])


def reports(plane: FakeControlPlane) -> list[QueryReport]:
    return [QueryReport.model_validate(r) for r in plane.reports["queries"]]


@pytest.mark.parametrize("plane_allows", [False, True])
def test_records_go_up_as_query_reports_with_text_only_when_the_plane_allows(
    plane: FakeControlPlane, coordinator: Coordinator, plane_allows: bool
) -> None:
    agent = Running(plane, query_text=plane_allows)
    # The gateway's own file says "send text" either way: the agent has the last word.
    gateway = start_in_thread(gateway_config(coordinator, agent.url, query_text=True), b"k" * 32)
    try:
        ids = [run(gateway.url, PLANTED) for _ in range(3)]
    finally:
        gateway.stop()  # flushes its records to the agent
    agent.listener.flush()
    agent.server.stop()
    [report] = reports(plane)
    assert report.agent_id == AGENT_ID
    assert [q.query_id for q in report.queries] == ids
    assert {(q.cluster_id, q.user, q.source, q.state) for q in report.queries} == {
        (CLUSTER, "alice", "bi", "FINISHED")
    }
    assert all(q.bytes_out > 0 and q.bytes_in == len(PLANTED) for q in report.queries)
    sent = str(plane.reports["queries"])
    assert ("planted-text-4f1c" in sent) is plane_allows
    assert [q.query_text for q in report.queries] == [PLANTED if plane_allows else None] * 3


def test_an_unreachable_control_plane_keeps_the_report_and_resends_it_once(
    plane: FakeControlPlane, agent: Running
) -> None:
    record = {
        "query_id": "q1",
        "state": "FAILED",
        "error_name": "SYNTAX_ERROR",
        "started_at": "2026-12-07T10:00:00Z",
        "finished_at": "2026-12-07T10:00:01Z",
    }
    bad = {**record, "query_id": "q 2", "state": "RUNNING"}  # not a contract record
    answer = requests.post(f"{agent.url}/v1/queries", json={"queries": [record, bad]}, timeout=5)
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1, "rejected": 1})
    plane.refuse_with = 503
    agent.listener.flush()
    assert plane.reports["queries"] == []
    assert agent.listener.pending is not None
    report_id = agent.listener.pending.report_id
    plane.refuse_with = None
    agent.listener.flush()
    agent.listener.flush()  # nothing left: nothing sent twice
    [report] = reports(plane)
    assert report.report_id == report_id
    assert [(q.query_id, q.error_name) for q in report.queries] == [("q1", "SYNTAX_ERROR")]
    assert agent.listener.rejected == 1


def test_a_wake_is_relayed_once_per_cluster_and_bad_input_is_422(
    plane: FakeControlPlane, agent: Running
) -> None:
    for _ in range(3):
        answer = requests.post(f"{agent.url}/v1/wake", json={"cluster": CLUSTER}, timeout=5)
        assert answer.status_code == 202
    assert [WakeRequest.model_validate(w) for w in plane.reports["wake"]] == [
        WakeRequest(agent_id=AGENT_ID, cluster_id=CLUSTER)
    ]
    for body in ({"cluster": "not-a-cluster"}, {}, []):
        answer = requests.post(f"{agent.url}/v1/wake", json=body, timeout=5)
        assert answer.status_code == 422
        assert answer.headers["Content-Type"].startswith("application/problem+json")
    answer = requests.post(f"{agent.url}/v1/queries", json={"queries": "x"}, timeout=5)
    assert answer.status_code == 422


def test_a_wake_the_control_plane_cannot_take_is_not_remembered(
    plane: FakeControlPlane, agent: Running
) -> None:
    plane.refuse_with = 503
    answer = requests.post(f"{agent.url}/v1/wake", json={"cluster": CLUSTER}, timeout=5)
    assert answer.status_code == 503
    plane.refuse_with = None
    answer = requests.post(f"{agent.url}/v1/wake", json={"cluster": CLUSTER}, timeout=5)
    assert answer.status_code == 202
    assert len(plane.reports["wake"]) == 1
