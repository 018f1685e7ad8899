"""The real clients through the Lakeplane gateway to sandbox engines: rows, cancel, health.

Two Trino engines form group ``adhoc``; two PrestoDB engines form group ``presto``, chosen by a rule
on the ``X-Presto-User`` header. The gateway runs in-process (its own thread and loop) with the
health poller stepped by the test, so "N failures / M successes" are counted, not timed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy
import trino

from computeplane_agent.gateway.config import parse_config
from computeplane_agent.gateway.server import GatewayThread, start_in_thread
from controlplane.sandbox.engine.server import EngineThread

from .conftest import start_engine
from .test_clients import MULTI_PAGE, MULTI_PAGE_DUCKDB, host_port, presto_conn, trino_conn

KEY = b"engine-tests-hmac-key-0123456789"
FAIL_THRESHOLD = 2
SUCCESS_THRESHOLD = 3


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, EngineThread]]:
    started = {
        "t1": start_engine("trino"),
        "t2": start_engine("trino"),
        "p1": start_engine("presto"),
        "p2": start_engine("presto"),
    }
    yield started
    for e in started.values():
        e.stop()


def gateway_config(engines: dict[str, EngineThread]) -> dict[str, Any]:
    def cluster(name: str) -> dict[str, Any]:
        engine = "trino" if name.startswith("t") else "presto"
        return {"id": name, "name": name, "engine": engine, "url": engines[name].url,
                "state": "running"}  # fmt: skip

    return {
        "version": "engine-tests",
        "groups": [
            {"name": "adhoc", "clusters": [cluster("t1"), cluster("t2")]},
            {"name": "presto", "clusters": [cluster("p1"), cluster("p2")]},
        ],
        "rules": [
            {
                "name": "presto-clients",
                "priority": 1,
                "group": "presto",
                "match": {"headers": {"x-presto-user": ".+"}},
            },
        ],
        "default_group": "adhoc",
        # The poller's own loop is out of the way: tests step it with poll_health().
        "health": {
            "interval_seconds": 3600,
            "timeout_seconds": 0.5,
            "fail_threshold": FAIL_THRESHOLD,
            "success_threshold": SUCCESS_THRESHOLD,
        },
        "wake": {"enabled": False, "max_wait_seconds": 5},
    }


@pytest.fixture(scope="module")
def gateways(engines: dict[str, EngineThread]) -> Iterator[list[GatewayThread]]:
    config = parse_config(gateway_config(engines))
    started = [start_in_thread(config, KEY), start_in_thread(config, KEY)]
    yield started
    for g in started:
        g.stop()


@pytest.fixture
def fresh_gateway(engines: dict[str, EngineThread]) -> Iterator[GatewayThread]:
    """A gateway with no queries in flight from earlier tests (its load counts start at 0)."""
    gateway = start_in_thread(parse_config(gateway_config(engines)), KEY)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _healthy(engines: dict[str, EngineThread]) -> Iterator[None]:
    yield
    for e in engines.values():
        e.set(fail=False, delay_seconds=0.0, query_seconds=0.0, workers=2)


def submitted(engines: dict[str, EngineThread]) -> dict[str, int]:
    return {name: len(e.engine.queries) for name, e in engines.items()}


def test_trino_dbapi_through_the_gateway(
    gateways: list[GatewayThread], engines: dict[str, EngineThread], duck: Any
) -> None:
    cur = trino_conn(gateways[0].url).cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    assert cur.fetchall() == [[60175]]
    before = submitted(engines)
    cur.execute(MULTI_PAGE)
    rows = [tuple(r) for r in cur.fetchall()]
    assert rows == duck.execute(MULTI_PAGE_DUCKDB).fetchall()
    after = submitted(engines)
    served = [n for n in engines if after[n] > before[n]]
    assert served in (["t1"], ["t2"])  # a Trino client's query went to the Trino group
    query = list(engines[served[0]].engine.queries.values())[-1]
    assert query.pages_served > 10  # every page came through the gateway


def test_trino_sqlalchemy_through_the_gateway(gateways: list[GatewayThread], duck: Any) -> None:
    host, port = host_port(gateways[0].url)
    engine = sqlalchemy.create_engine(f"trino://alice@{host}:{port}/tpch/tiny")
    with engine.connect() as con:
        count = con.execute(sqlalchemy.text("SELECT count(*) FROM tpch.tiny.lineitem")).scalar()
        rows = con.execute(
            sqlalchemy.text(
                "SELECT orderkey, linenumber, extendedprice FROM lineitem "
                "WHERE orderkey < :k ORDER BY orderkey, linenumber"
            ),
            {"k": 20000},
        ).all()
    assert count == 60175
    assert [tuple(r) for r in rows] == duck.execute(
        "SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem "
        "WHERE l_orderkey < 20000 ORDER BY 1, 2"
    ).fetchall()


def test_presto_client_through_the_gateway(
    gateways: list[GatewayThread], engines: dict[str, EngineThread], duck: Any
) -> None:
    before = submitted(engines)
    cur = presto_conn(gateways[0].url, catalog="tpch", schema="tiny").cursor()
    cur.execute("SELECT count(*) FROM lineitem")
    assert cur.fetchall() == [[60175]]
    cur.execute(
        "SELECT orderkey, linenumber, returnflag, comment FROM lineitem "
        "ORDER BY orderkey, linenumber"
    )
    rows = [tuple(r) for r in cur.fetchall()]
    assert (
        rows
        == duck.execute(
            "SELECT l_orderkey, l_linenumber, l_returnflag, l_comment FROM lineitem ORDER BY 1, 2"
        ).fetchall()
    )
    after = submitted(engines)
    # The header rule sent the PrestoDB client to PrestoDB engines only.
    assert after["t1"] == before["t1"]
    assert after["t2"] == before["t2"]
    assert after["p1"] + after["p2"] == before["p1"] + before["p2"] + 2


def test_cancel_through_the_gateway(
    gateways: list[GatewayThread], engines: dict[str, EngineThread]
) -> None:
    for name in ("t1", "t2"):
        engines[name].set(query_seconds=120)
    cur = trino_conn(gateways[0].url).cursor()

    def run() -> None:
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        except trino.exceptions.TrinoUserError:
            pass

    worker = threading.Thread(target=run)
    worker.start()
    for _ in range(1500):  # bounded: 30 s
        if cur.query_id:
            break
        time.sleep(0.02)
    cur.cancel()  # a DELETE on the gateway's signed nextUri, proxied to the engine
    worker.join(30)
    query = next(
        e.engine.queries[cur.query_id] for e in engines.values() if cur.query_id in e.engine.queries
    )
    assert query.state == "FAILED"
    assert query.error is not None
    assert query.error.name == "USER_CANCELED"


def _served_by(gateway: GatewayThread, engines: dict[str, EngineThread], n: int) -> set[str]:
    """Run ``n`` small queries through ``gateway``; the engines that got them."""
    hit: set[str] = set()
    for _ in range(n):
        before = submitted(engines)
        cur = trino_conn(gateway.url).cursor()
        cur.execute("SELECT 1")
        assert cur.fetchall() == [[1]]
        after = submitted(engines)
        hit |= {name for name in engines if after[name] > before[name]}
    return hit


@pytest.mark.parametrize("knob", [{"fail": True}, {"delay_seconds": 2.0}])
def test_a_failing_engine_is_skipped_and_readmitted_after_m_successes(
    fresh_gateway: GatewayThread, engines: dict[str, EngineThread], knob: dict[str, Any]
) -> None:
    gateway = fresh_gateway
    gateway.poll_health()
    assert _served_by(gateway, engines, 3) == {"t1"}  # equal load: the first name, stably

    engines["t1"].set(**knob)  # 503s, or answers slower than the probe's 0.5 s timeout
    for _ in range(FAIL_THRESHOLD - 1):
        gateway.poll_health()
        assert gateway.state.health["t1"].state == "up"  # one bad probe is not enough
    gateway.poll_health()
    assert gateway.state.health["t1"].state == "down"
    engines["t1"].set(fail=False, delay_seconds=0.0)
    assert _served_by(gateway, engines, 3) == {"t2"}

    for _ in range(SUCCESS_THRESHOLD - 1):
        gateway.poll_health()
        assert gateway.state.health["t1"].state == "down"
        assert _served_by(gateway, engines, 2) == {"t2"}  # not yet re-admitted
    gateway.poll_health()
    assert gateway.state.health["t1"].state == "up"
    assert _served_by(gateway, engines, 3) == {"t1"}


def test_a_second_replica_serves_the_follow_ups(
    gateways: list[GatewayThread], engines: dict[str, EngineThread], duck: Any
) -> None:
    first, second = gateways
    headers = {"X-Trino-User": "alice", "X-Trino-Catalog": "tpch", "X-Trino-Schema": "tiny"}
    doc = requests.post(
        f"{first.url}/v1/statement", data=MULTI_PAGE, headers=headers, timeout=30
    ).json()
    rows: list[list[Any]] = []
    pages = 0
    while "nextUri" in doc:
        assert doc["nextUri"].startswith(first.url)
        # Behind one Service the next request may land on any replica: send it to the other.
        uri = doc["nextUri"].replace(first.url, second.url)
        resp = requests.get(uri, headers=headers, timeout=30)
        resp.raise_for_status()
        doc = resp.json()
        rows.extend(doc.get("data", []))
        pages += 1
        first, second = second, first
    assert doc["stats"]["state"] == "FINISHED"
    assert pages > 10
    expected = duck.execute(MULTI_PAGE_DUCKDB).fetchall()
    assert len(rows) == len(expected)
    assert [r[0] for r in rows] == [e[0] for e in expected]
    assert [r[5] for r in rows] == [e[5] for e in expected]


def test_gateway_status_reports_engine_load(
    fresh_gateway: GatewayThread, engines: dict[str, EngineThread]
) -> None:
    gateways = [fresh_gateway]
    engines["t1"].set(query_seconds=60)
    doc = requests.post(
        f"{gateways[0].url}/v1/statement",
        data="SELECT 1",
        headers={"X-Trino-User": "alice"},
        timeout=30,
    ).json()
    gateways[0].poll_health()
    status = requests.get(f"{gateways[0].url}/_lakeplane/v1/status", timeout=10).json()
    loads = {cid: c["running"] + c["queued"] for cid, c in status["clusters"].items()}
    assert loads["t1"] == 1  # read from the engine's /v1/cluster
    assert requests.delete(doc["nextUri"], timeout=10).status_code == 204
    gateways[0].poll_health()
    status = requests.get(f"{gateways[0].url}/_lakeplane/v1/status", timeout=10).json()
    assert status["clusters"]["t1"]["running"] == 0
