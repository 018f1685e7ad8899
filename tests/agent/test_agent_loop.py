"""The agent's loop against a fake control plane over real HTTP, with the in-memory target."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from computeplane_agent.agent import Agent
from computeplane_agent.client import HttpControlPlaneClient
from computeplane_agent.contract import DesiredState
from computeplane_agent.targets.memory import MemoryTarget
from tests.agent.factories import cluster_spec, desired_state

WORKER = "lp-cl-01hv0000000000000000000001-worker"


class FakeControlPlane:
    """Serves one desired-state document (or raw bytes) and records every report."""

    def __init__(self, port: int = 0) -> None:
        self.document: bytes = b""
        self.version = 0
        self.reports: dict[str, list[dict[str, Any]]] = {
            "status": [], "heartbeat": [], "usage": [], "queries": [], "wake": [],
        }  # fmt: skip
        self.refuse_with: int | None = None  # answer every report with this status instead
        self.auth: list[str | None] = []
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", etag: int | None = None) -> None:
                self.send_response(status)
                if etag is not None:
                    self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                plane.auth.append(self.headers.get("Authorization"))
                if self.headers.get("If-None-Match") == f'"{plane.version}"':
                    self._send(304, etag=plane.version)  # no long wait: tests drive the loop
                else:
                    self._send(200, plane.document, etag=plane.version)

            def do_POST(self) -> None:
                plane.auth.append(self.headers.get("Authorization"))
                kind = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if plane.refuse_with is not None:
                    self._send(plane.refuse_with, b"{}")
                    return
                plane.reports[kind].append(json.loads(body))
                self._send(202, b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, state: DesiredState) -> None:
        self.document, self.version = state.model_dump_json().encode(), state.version

    def publish_raw(self, version: int, body: dict[str, Any]) -> None:
        self.document, self.version = json.dumps(body).encode(), version

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plane() -> Iterator[FakeControlPlane]:
    server = FakeControlPlane()
    yield server
    server.close()


def _agent(plane: FakeControlPlane, target: MemoryTarget) -> Agent:
    client = HttpControlPlaneClient(
        f"http://127.0.0.1:{plane.port}",
        credential="agent-credential-0123456789",
        timeout_seconds=5,
    )
    return Agent(client, target, agent_id="agt_1", poll_seconds=0, usage_seconds=0)


def _replicas(target: MemoryTarget, name: str) -> int:
    [obj] = [
        o for ref, o in target.objects.items() if ref.name == name and ref.kind == "Deployment"
    ]
    return int(obj["spec"]["replicas"])


def test_apply_observe_report_and_zero_writes_when_unchanged(plane: FakeControlPlane) -> None:
    target = MemoryTarget()
    agent = _agent(plane, target)
    plane.publish(desired_state(version=1))
    assert agent.run_once() == 0
    assert target.writes == 9
    status = plane.reports["status"][-1]
    assert status["applied_version"] == 1
    assert status["error"] is None
    [cluster] = status["clusters"]
    assert (cluster["phase"], cluster["workers_ready"], cluster["coordinator_ready"]) == (
        "running",
        3,
        True,
    )
    assert set(plane.auth) == {"Bearer agent-credential-0123456789"}

    # 304: nothing to do, nothing written.
    agent.run_once()
    assert target.writes == 9
    # A new version with the same content: still nothing written.
    plane.publish(desired_state(version=2))
    agent.run_once()
    assert target.writes == 9
    assert plane.reports["status"][-1]["applied_version"] == 2
    # A fresh agent process (restart) against the same target: nothing written either.
    fresh = _agent(plane, target)
    fresh.run_once()
    assert target.writes == 9

    # Resize writes the worker Deployment only; delete prunes everything.
    plane.publish(desired_state(version=3, clusters=[cluster_spec(workers={"replicas": 5})]))
    agent.run_once()
    assert target.applied[-1].name == WORKER
    assert target.writes == 10
    assert _replicas(target, WORKER) == 5
    plane.publish(desired_state(version=4, clusters=[]))
    agent.run_once()
    assert target.objects == {}
    assert plane.reports["status"][-1]["clusters"] == []
    assert plane.reports["heartbeat"][0]["agent_id"] == "agt_1"


def test_usage_reports_nodes_per_instance_type(plane: FakeControlPlane) -> None:
    target = MemoryTarget()
    agent = _agent(plane, target)
    plane.publish(desired_state(version=1))
    agent.run_once()
    agent.run_once()
    samples = [s for report in plane.reports["usage"] for s in report["samples"]]
    by_type = {(s["role"], s["instance_type"]): s["nodes"] for s in samples}
    assert by_type == {("coordinator", "m6i.xlarge"): 1, ("worker", "r6i.2xlarge"): 3}


def test_control_plane_unreachable_keeps_the_cluster_and_catches_up(
    plane: FakeControlPlane,
) -> None:
    target = MemoryTarget()
    agent = _agent(plane, target)
    plane.publish(desired_state(version=1))
    agent.run_once()
    before = dict(target.objects)
    writes = target.writes
    port = plane.port
    plane.close()

    for _ in range(3):
        assert agent.run_once() > 0  # backs off
    assert target.objects == before
    assert target.writes == writes

    back = FakeControlPlane(port)
    try:
        back.publish(desired_state(version=2, clusters=[cluster_spec(workers={"replicas": 5})]))
        assert agent.run_once() == 0
        assert _replicas(target, WORKER) == 5
        assert back.reports["status"][-1]["applied_version"] == 2
    finally:
        back.close()


def test_malformed_or_unrenderable_state_is_reported_and_the_last_good_state_kept(
    plane: FakeControlPlane,
) -> None:
    target = MemoryTarget()
    agent = _agent(plane, target)
    plane.publish(desired_state(version=1))
    agent.run_once()
    before = dict(target.objects)
    writes = target.writes

    broken = desired_state(version=2).model_dump(mode="json")
    broken["clusters"][0]["workers"]["replicas"] = "lots"
    broken["surprise"] = {"free": "form"}
    plane.publish_raw(2, broken)
    assert agent.run_once() == 0
    error = plane.reports["status"][-1]["error"]
    assert error["code"] == "invalid_desired_state"
    assert error["version"] == 2
    assert "lots" not in error["message"]  # input is not echoed back
    assert plane.reports["status"][-1]["applied_version"] == 1
    assert plane.reports["status"][-1]["clusters"][0]["phase"] == "running"

    # An instance type the agent cannot size: parses, but fails to render.
    plane.publish(
        desired_state(version=3, clusters=[cluster_spec(workers={"instance_type": "x9.huge"})])
    )
    agent.run_once()
    error = plane.reports["status"][-1]["error"]
    assert (error["code"], error["version"]) == ("render_failed", 3)
    assert "x9.huge" in error["message"]
    assert target.objects == before
    assert target.writes == writes

    # The bad version is not fetched again and again: the agent sends its ETag and gets 304.
    agent.run_once()
    assert target.writes == writes

    # A fixed version clears the error and applies.
    plane.publish(desired_state(version=4, clusters=[cluster_spec(workers={"replicas": 4})]))
    agent.run_once()
    assert plane.reports["status"][-1]["error"] is None
    assert _replicas(target, WORKER) == 4


def test_a_failing_target_is_retried_without_refetching(plane: FakeControlPlane) -> None:
    target = MemoryTarget()
    target.fail_next = 1
    agent = _agent(plane, target)
    plane.publish(desired_state(version=1))
    assert agent.run_once() > 0
    assert agent.run_once() == 0
    assert len(target.objects) == 9
    assert plane.reports["status"][-1]["applied_version"] == 1
