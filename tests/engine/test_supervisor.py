"""The sandbox's engine supervisor: an engine process per running cluster the agent applied.

The objects are the agent's own rendering written by its directory target, as the local agent
does; the supervisor is driven pass by pass, and the engine is a real process reached by the real
trino client at the address the record (and ``DirectoryTarget.coordinator_url``) gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trino

from computeplane_agent.render.cluster import render_cluster
from computeplane_agent.targets.base import with_applied_hash
from computeplane_agent.targets.directory import DirectoryTarget
from controlplane.sandbox.engine.supervisor import Supervisor, is_engine
from tests.agent.factories import CLUSTER_ID, cluster_spec

pytestmark = pytest.mark.e2e


def apply(target: DirectoryTarget, **spec: Any) -> None:
    objects = render_cluster(cluster_spec(catalogs=[], **spec), vpc_cidr="10.42.0.0/16")
    target.apply([with_applied_hash(o) for o in objects])


def wait_for(check: Callable[[], Any], what: str, limit: float = 60.0) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def info(url: str) -> dict[str, Any] | None:
    try:
        return requests.get(f"{url}/v1/info", timeout=2).json()
    except requests.RequestException:
        return None


def ready(url: str) -> bool:
    doc = info(url)
    return doc is not None and doc["starting"] is False


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[tuple[DirectoryTarget, Supervisor]]:
    target = DirectoryTarget(tmp_path / "manifests")
    supervisor = Supervisor(target.root)
    yield target, supervisor
    supervisor.stop_all()


def test_running_cluster_gets_an_engine_that_follows_stop_start_resize_and_delete(
    plane: tuple[DirectoryTarget, Supervisor],
) -> None:
    target, supervisor = plane
    apply(target, workers={"replicas": 2})
    supervisor.sync_once()
    record = supervisor.record(CLUSTER_ID)
    assert record is not None
    url = target.coordinator_url(CLUSTER_ID)
    assert url == record["url"]
    assert (record["state"], record["engine"], record["version"]) == ("running", "trino", "476")
    wait_for(lambda: ready(url), "the engine is up")
    assert info(url)["nodeVersion"]["version"] == "476"  # type: ignore[index]

    host, port = url.removeprefix("http://").split(":")
    cur = trino.dbapi.connect(host=host, port=int(port), user="alice").cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    assert cur.fetchall() == [[60175]]
    assert requests.get(f"{url}/v1/cluster", timeout=5).json()["activeWorkers"] == 2

    # Resize: the worker Deployment's ready replicas become the engine's workers.
    apply(target, workers={"replicas": 5})
    supervisor.sync_once()
    assert requests.get(f"{url}/v1/cluster", timeout=5).json()["activeWorkers"] == 5
    assert supervisor.record(CLUSTER_ID)["workers"] == 5  # type: ignore[index]

    # Stop: the coordinator goes to 0 replicas, the process goes away, the address stays.
    pid = record["pid"]
    apply(target, state="stopped")
    supervisor.sync_once()
    assert not is_engine(pid)
    stopped = supervisor.record(CLUSTER_ID)
    assert stopped is not None
    assert (stopped["state"], stopped["pid"], stopped["url"]) == ("stopped", None, url)
    assert info(url) is None

    # Start again: same address, a fresh engine.
    apply(target, state="running")
    supervisor.sync_once()
    assert target.coordinator_url(CLUSTER_ID) == url
    wait_for(lambda: ready(url), "the engine is back")
    cur = trino.dbapi.connect(host=host, port=int(port), user="alice").cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.nation")
    assert cur.fetchall() == [[25]]

    # Upgrade: a new engine version restarts the process with it.
    before = supervisor.record(CLUSTER_ID)["pid"]  # type: ignore[index]
    apply(target, version="472")
    supervisor.sync_once()
    assert not is_engine(before)
    wait_for(
        lambda: (info(url) or {}).get("nodeVersion", {}).get("version") == "472", "the new version"
    )

    # Delete: the cluster's objects are pruned; the engine and its record go.
    last = supervisor.record(CLUSTER_ID)["pid"]  # type: ignore[index]
    for managed in target.list_managed():
        target.delete(managed.ref)
    supervisor.sync_once()
    assert not is_engine(last)
    assert supervisor.record(CLUSTER_ID) is None
    assert target.coordinator_url(CLUSTER_ID) is None


def test_a_stopped_cluster_has_an_address_before_its_first_start(
    plane: tuple[DirectoryTarget, Supervisor],
) -> None:
    target, supervisor = plane
    apply(target, state="stopped")
    supervisor.sync_once()
    record = supervisor.record(CLUSTER_ID)
    assert record is not None
    assert record["state"] == "stopped"
    assert record["pid"] is None
    assert target.coordinator_url(CLUSTER_ID) == record["url"]  # the gateway can name it


def test_presto_clusters_get_a_presto_engine(plane: tuple[DirectoryTarget, Supervisor]) -> None:
    target, supervisor = plane
    apply(target, engine="presto", version="0.289")
    supervisor.sync_once()
    url = target.coordinator_url(CLUSTER_ID)
    assert url is not None
    wait_for(lambda: ready(url), "the engine is up")
    resp = requests.post(
        f"{url}/v1/statement", data="SELECT 1", headers={"X-Presto-User": "a"}, timeout=5
    )
    assert resp.status_code == 200
