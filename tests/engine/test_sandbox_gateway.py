"""The sandbox's gateway: one local process per plane, in front of the plane's sandbox engines.

Everything is the real path except the control plane (the agent tests' fake, which records the
wake): the agent renders and applies through its directory target, the supervisor runs the engine
processes and the gateway process, the agent's listener relays the gateway's wake, and the real
``trino`` client talks to the gateway's address.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trino

from computeplane_agent.agent import Agent
from computeplane_agent.client import HttpControlPlaneClient
from computeplane_agent.contract import DesiredState, GatewaySpec, WakeRequest
from computeplane_agent.gateway.server import AppThread
from computeplane_agent.listener import Listener
from computeplane_agent.render import GatewayEnvironment
from computeplane_agent.targets.directory import DirectoryTarget
from controlplane.sandbox.engine.gateway import MARKER
from controlplane.sandbox.engine.processes import is_engine
from controlplane.sandbox.engine.supervisor import Supervisor
from tests.agent.factories import cluster_spec, desired_state
from tests.agent.test_agent_loop import FakeControlPlane
from tests.engine.test_supervisor import wait_for

pytestmark = pytest.mark.e2e

ONE = "cl_01hv000000000000000000001a"
TWO = "cl_01hv000000000000000000002b"
NIGHT = "cl_01hv000000000000000000003c"
LINEITEM = 60_175


class Plane:
    """A fake control plane, the real agent (with its listener) and the real supervisor."""

    def __init__(self, root: Path) -> None:
        self.cp = FakeControlPlane()
        url = f"http://127.0.0.1:{self.cp.port}"
        client = HttpControlPlaneClient(url, credential="agent-credential-0123456789")
        self.listener = Listener(
            HttpControlPlaneClient(url, credential="agent-credential-0123456789"),
            agent_id="agt_1",
            gateway=lambda: self.agent.state.applied.gateway if self.agent.state.applied else None,
        )
        self.listener_thread = AppThread(self.listener.app(), name="agent-listener")
        self.target = DirectoryTarget(root)
        self.agent = Agent(
            client,
            self.target,
            agent_id="agt_1",
            poll_seconds=0,
            gateway=GatewayEnvironment(image="agent:test", agent_url=self.listener_thread.url),
        )
        self.supervisor = Supervisor(root)
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.supervisor.run_forever, kwargs={"interval": 0.2, "stop": self.stop}
        )
        self.version = 0

    def publish(self, night: str = "stopped", one: str = "running") -> None:
        self.version += 1
        clusters = [
            cluster_spec(id=ONE, name="one", node_group="one", catalogs=[], state=one),
            cluster_spec(id=TWO, name="two", node_group="two", catalogs=[]),
            cluster_spec(id=NIGHT, name="night", node_group="night", catalogs=[], state=night),
        ]
        gateway = GatewaySpec.model_validate({
            "enabled": True,
            "routing_groups": [{"name": "adhoc", "clusters": [ONE, TWO]},
                               {"name": "nightly", "clusters": [NIGHT]}],
            "rules": [{"name": "batch", "group": "nightly", "match": {"source": "batch"}}],
            "default_group": "adhoc",
            "health": {"interval_seconds": 0.3, "fail_threshold": 1, "success_threshold": 1},
            "wake": {"max_wait_seconds": 120},
        })  # fmt: skip
        state: DesiredState = desired_state(
            version=self.version, clusters=clusters, gateway=gateway
        )
        self.cp.publish(state)
        self.agent.run_once()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(60)
        else:
            self.supervisor.stop_all()
        self.listener_thread.stop()
        self.cp.close()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    p = Plane(tmp_path / "manifests")
    yield p
    p.close()


def status(url: str) -> dict[str, Any]:
    result: dict[str, Any] = requests.get(f"{url}/_lakeplane/v1/status", timeout=5).json()
    return result


def up(url: str, *clusters: str) -> bool:
    try:
        found = status(url)["clusters"]
    except (requests.RequestException, ValueError):
        return False
    return all(found.get(c, {}).get("health") == "up" for c in clusters)


def test_one_gateway_process_serves_the_real_clients_routes_around_a_stop_and_wakes(
    plane: Plane,
) -> None:
    plane.publish()
    plane.supervisor.sync_once()
    plane.thread.start()
    url = wait_for(plane.target.gateway_url, "the gateway has an address")
    record = plane.supervisor.gateway.record()
    assert record is not None
    assert is_engine(record["pid"], MARKER)
    wait_for(lambda: up(url, ONE, TWO), "both engines are up behind the gateway", 90)
    host, port = url.removeprefix("http://").split(":")

    cur = trino.dbapi.connect(host=host, port=int(port), user="alice", source="bi").cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    assert cur.fetchall() == [[LINEITEM]]
    # (presto-python-client against PrestoDB clusters: tests/engine/test_through_gateway.py)

    # Stop "one": the agent scales it to 0, the supervisor stops its engine and rewrites the
    # gateway's file; the running gateway reloads it and sends everything to "two".
    plane.publish(one="stopped")
    wait_for(lambda: status(url)["clusters"][ONE]["health"] == "down", "one is down", 60)
    before = status(url)["config_version"]
    for _ in range(3):
        cur.execute("SELECT 1")
        assert cur.fetchall() == [[1]]
    assert status(url)["config_version"] == before  # one process, reloaded, never restarted
    assert plane.supervisor.gateway.record() == record

    # "night" is stopped: a batch query asks the agent to wake it and waits, QUEUED.
    answer: dict[str, Any] = {}

    def batch() -> None:
        c = trino.dbapi.connect(host=host, port=int(port), user="etl", source="batch").cursor()
        c.execute("SELECT count(*) FROM tpch.tiny.nation")
        answer["rows"] = c.fetchall()

    client = threading.Thread(target=batch)
    client.start()
    wait_for(lambda: plane.cp.reports["wake"], "the gateway asked the agent to wake night", 30)
    assert [WakeRequest.model_validate(w).cluster_id for w in plane.cp.reports["wake"]] == [NIGHT]
    assert client.is_alive()  # still waiting, not failed
    plane.publish(night="running", one="stopped")  # what the control plane does on a wake
    client.join(120)
    assert answer["rows"] == [[25]]
