"""Graceful scale-in on the sandbox engine: a worker put into SHUTTING_DOWN through the engines'
own API (``PUT …/v1/info/state``) finishes the query it runs, takes no new one, then leaves; a
worker lost without grace fails its query — so the graceful path is what keeps queries alive."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from computeplane_agent.coordinator import read_load
from controlplane.sandbox.engine.server import EngineThread
from tests.engine.conftest import start_engine
from tests.engine.test_clients import _post, _until, trino_conn

LONG = "SELECT count(*) FROM tpch.tiny.orders"


@pytest.fixture
def engine():
    thread = start_engine("trino", workers=2)
    yield thread
    thread.stop()


def follow(doc: dict[str, Any]) -> dict[str, Any]:
    while "nextUri" in doc:
        doc = requests.get(doc["nextUri"], timeout=30).json()
    return doc


def nodes(engine: EngineThread) -> list[dict[str, Any]]:
    return requests.get(f"{engine.url}/v1/node", timeout=10).json()


def busy_worker(engine: EngineThread) -> dict[str, Any]:
    return next(n for n in nodes(engine) if n["processCpuLoad"] > 0.5)


def test_shutting_down_a_busy_worker_lets_its_query_finish(engine: EngineThread) -> None:
    engine.set(query_seconds=1.0)
    first = _post(engine.url, LONG)
    _until(lambda: engine.engine.executing == 1, "the query runs")
    worker = busy_worker(engine)
    answer = requests.put(
        f"{worker['uri']}/v1/info/state",
        json="SHUTTING_DOWN",
        headers={"X-Trino-User": "lakeplane-shutdown"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json() == "SHUTTING_DOWN"
    load = read_load(engine.url)
    assert load is not None
    assert load.active_workers == 1  # the shutting-down worker no longer counts
    # A new query goes to the other worker, never to the one leaving.
    second = _post(engine.url, "SELECT 2")
    _until(lambda: engine.engine.executing == 2, "the second query runs")
    leaving = next(w for w in engine.engine.workers if w.state == "SHUTTING_DOWN")
    assert leaving.query is not None
    assert leaving.query.statement == LONG

    done = follow(first)
    assert done["stats"]["state"] == "FINISHED", done.get("error")
    assert done["data"] == [[15000]]
    assert follow(second)["stats"]["state"] == "FINISHED"
    _until(lambda: len(nodes(engine)) == 1, "the drained worker leaves")
    assert engine.engine.knobs.workers == 1


def test_lowering_the_worker_count_drains_and_fails_no_running_query(engine: EngineThread) -> None:
    engine.set(query_seconds=1.0)
    with trino_conn(engine.url) as conn:
        results: list[Any] = []

        def run() -> None:
            cur = conn.cursor()
            cur.execute(LONG)
            results.append(cur.fetchall())

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        _until(lambda: engine.engine.executing == 2, "both queries run")
        engine.set(workers=1)  # the supervisor's scale-in: one worker must go
        assert len(nodes(engine)) == 2  # it waits for its query
        for t in threads:
            t.join(30)
    assert results == [[[15000]], [[15000]]]
    _until(lambda: len(nodes(engine)) == 1, "one worker left")


def test_a_worker_lost_without_grace_fails_its_query(engine: EngineThread) -> None:
    engine.set(query_seconds=5.0)
    doc = _post(engine.url, LONG)
    _until(lambda: engine.engine.executing == 1, "the query runs")
    worker = busy_worker(engine)
    assert requests.delete(worker["uri"], timeout=10).status_code == 200
    final = follow(doc)
    assert final["stats"]["state"] == "FAILED"
    assert "no longer active" in final["error"]["message"]


def test_only_shutting_down_can_be_set(engine: EngineThread) -> None:
    worker = nodes(engine)[0]
    answer = requests.put(f"{worker['uri']}/v1/info/state", json="ACTIVE", timeout=10)
    assert answer.status_code == 400
    gone = requests.put(f"{engine.url}/_lakeplane/engine/worker/99/v1/info/state",
                        json="SHUTTING_DOWN", timeout=10)  # fmt: skip
    assert gone.status_code == 404


def test_the_load_script_runs_queries_and_none_fails_while_workers_drain(engine: EngineThread):
    import scripts.sandbox_load as load

    done: list[int] = []
    runner = threading.Thread(
        target=lambda: done.append(
            load.main(
                ["--endpoint", engine.url, "--clients", "3", "--seconds", "2", "--hold", "0.3"]
            )
        )
    )
    runner.start()
    _until(lambda: engine.engine.executing == 2, "both workers busy, one client queued")
    assert read_load(engine.url).queued >= 1  # type: ignore[union-attr]
    engine.set(workers=1)  # a scale-in while the load runs
    runner.join(30)
    assert done == [0]  # every query finished
    assert engine.engine.completed >= 3
