"""The proxy: protocol pass-through, signed follow-ups any replica serves, failover, drain, wake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from computeplane_agent.contract import QueryRecord
from computeplane_agent.gateway.config import parse_config
from computeplane_agent.gateway.server import (
    AppThread,
    GatewayThread,
    reload_config,
    start_in_thread,
)

from .coordinator import Coordinator

KEY = b"k" * 32


def raw_config(
    a: Coordinator, b: Coordinator, *, agent_url: str | None = None, **over: Any
) -> dict[str, Any]:
    def c(co: Coordinator, state: str = "running") -> dict[str, Any]:
        return {"id": f"cl_{co.name}", "name": co.name, "engine": "trino", "url": co.url,
                "state": state}  # fmt: skip

    raw: dict[str, Any] = {
        "version": "v1",
        "groups": [{"name": "adhoc", "clusters": [c(a), c(b)]}],
        "rules": [],
        "default_group": "adhoc",
        "health": {
            "interval_seconds": 60,
            "timeout_seconds": 2,
            "fail_threshold": 2,
            "success_threshold": 2,
        },
        "wake": {"enabled": True, "max_wait_seconds": 30},
        "agent_url": agent_url,
    }
    raw.update(over)
    return raw


@pytest.fixture
def coordinators() -> Iterator[tuple[Coordinator, Coordinator]]:
    a, b = Coordinator("a"), Coordinator("b")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def gateways(coordinators: tuple[Coordinator, Coordinator]) -> Iterator[list[GatewayThread]]:
    config = parse_config(raw_config(*coordinators))
    started = [start_in_thread(config, KEY), start_in_thread(config, KEY)]
    yield started
    for g in started:
        g.stop()


HEADERS = {"X-Trino-User": "alice", "X-Trino-Source": "tests", "X-Trino-Catalog": "tpch"}


def valid_records(raw: Any) -> list[QueryRecord]:
    """The gateway's records as the agent contract reads them (raises on any invalid one)."""
    return [QueryRecord.model_validate(r) for r in raw]


def run_query(
    url: str, sql: str = "SELECT 1", headers: dict[str, str] | None = None
) -> tuple[list[Any], list[dict]]:
    """A client's loop: POST, then follow nextUri; returns the rows and every response document."""
    h = headers or HEADERS
    resp = requests.post(f"{url}/v1/statement", data=sql, headers=h, timeout=30)
    resp.raise_for_status()
    docs = [resp.json()]
    while "nextUri" in docs[-1]:
        resp = requests.get(docs[-1]["nextUri"], headers=h, timeout=30)
        resp.raise_for_status()
        docs.append(resp.json())
    return [row for d in docs for row in d.get("data", [])], docs


def test_a_query_through_the_gateway_returns_what_the_coordinator_gives(
    gateways: list[GatewayThread], coordinators: Any
) -> None:
    direct_rows, _ = run_query(coordinators[0].url)
    rows, docs = run_query(gateways[0].url, "SELECT n FROM t")
    assert rows == direct_rows
    assert len(rows) == 30
    assert docs[-1]["stats"]["state"] == "FINISHED"
    for d in docs[:-1]:
        assert d["nextUri"].startswith(gateways[0].url + "/_lakeplane/v1/q/")
        assert d["infoUri"].startswith(gateways[0].url)
    a, b = coordinators
    assert "SELECT n FROM t" in a.statements + b.statements
    sent = (a.headers + b.headers)[-1]
    assert sent["X-Trino-User"] == "alice"


def test_presto_headers_pass_through_unchanged(
    gateways: list[GatewayThread], coordinators: Any
) -> None:
    resp = requests.post(
        f"{gateways[0].url}/v1/statement",
        data="SELECT 1",
        headers={"X-Presto-User": "bob"},
        timeout=30,
    )
    assert resp.headers["X-Trino-Added-Prepare"] == "p=1"
    a, b = coordinators
    assert (a.headers + b.headers)[-1]["X-Presto-User"] == "bob"


def test_a_second_replica_serves_follow_ups_it_never_saw(gateways: list[GatewayThread]) -> None:
    first, second = gateways
    doc = requests.post(
        f"{first.url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30
    ).json()
    pages = 0
    while "nextUri" in doc:
        other = doc["nextUri"].replace(first.url, second.url)
        doc = requests.get(other, headers=HEADERS, timeout=30).json()
        pages += 1
    assert pages == 3
    assert doc["stats"]["state"] == "FINISHED"
    assert second.state.recorder.buffer[-1]["query_id"] == doc["id"]


def test_a_tampered_next_uri_is_refused_with_the_protocol_error(
    gateways: list[GatewayThread], coordinators: Any
) -> None:
    doc = requests.post(
        f"{gateways[0].url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30
    ).json()
    token = doc["nextUri"].rsplit("/", 1)[1]
    body, mac = token.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    resp = requests.get(doc["nextUri"].replace(token, forged), headers=HEADERS, timeout=30)
    assert resp.status_code == 400
    assert resp.json()["error"]["errorName"] == "GATEWAY_URI_INVALID"
    resp = requests.get(f"{gateways[0].url}/_lakeplane/v1/q/garbage", headers=HEADERS, timeout=30)
    assert resp.status_code == 400


def test_cancel_reaches_the_backend(gateways: list[GatewayThread], coordinators: Any) -> None:
    doc = requests.post(
        f"{gateways[0].url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30
    ).json()
    g = gateways[0]
    assert g.state.in_flight_counts() == {f"cl_{doc['id'].split('_')[0]}": 1}
    assert requests.delete(doc["nextUri"], headers=HEADERS, timeout=30).status_code == 204
    a, b = coordinators
    assert doc["id"] in a.cancelled | b.cancelled
    # The cancel ended the query here too: nothing in flight, one CANCELED record.
    assert g.state.in_flight_counts() == {}
    records = valid_records(g.state.recorder.buffer)
    assert [(r.query_id, r.state, r.error_name) for r in records] == [
        (doc["id"], "CANCELED", "USER_CANCELED")
    ]


def test_a_dead_backend_is_routed_around_after_n_failed_probes(
    gateways: list[GatewayThread], coordinators: Any
) -> None:
    a = coordinators[0]
    g = gateways[0]
    a.fail = True
    g.poll_health()
    assert g.state.health["cl_a"].state == "up"  # one failure is not enough
    g.poll_health()
    assert g.state.health["cl_a"].state == "down"
    before = len(a.submitted)
    for _ in range(4):
        run_query(g.url)
    assert len(a.submitted) == before
    a.fail = False
    g.poll_health()
    assert g.state.health["cl_a"].state == "down"  # re-admitted only after M successes
    g.poll_health()
    assert g.state.health["cl_a"].state == "up"


def test_a_draining_cluster_finishes_its_query_and_gets_no_new_one(
    tmp_path: Path, coordinators: Any
) -> None:
    a, b = coordinators
    a.hold = True
    path = tmp_path / "gateway.json"
    raw = raw_config(a, b)
    raw["groups"][0]["clusters"][1]["state"] = "stopped"  # only a at first
    path.write_text(json.dumps(raw))
    g = start_in_thread(parse_config(raw), KEY, path)
    try:
        doc = requests.post(
            f"{g.url}/v1/statement", data="long", headers=HEADERS, timeout=30
        ).json()
        assert doc["id"].startswith("a_")
        raw["groups"][0]["clusters"][0]["state"] = "draining"
        raw["groups"][0]["clusters"][1]["state"] = "running"
        raw["version"] = "v2"
        path.write_text(json.dumps(raw))
        assert reload_config(g.state) or g.state.config.version == "v2"
        g.poll_health()
        status = requests.get(f"{g.url}/_lakeplane/v1/status", timeout=30).json()
        assert status["config_version"] == "v2"
        assert status["clusters"]["cl_a"]["draining"] is True
        assert status["clusters"]["cl_a"]["drained"] is False
        for _ in range(3):
            _, docs = run_query(g.url)
            assert docs[0]["id"].startswith("b_")
        a.hold = False
        while "nextUri" in doc:
            doc = requests.get(doc["nextUri"], headers=HEADERS, timeout=30).json()
        assert doc["stats"]["state"] == "FINISHED"
        g.poll_health()
        status = requests.get(f"{g.url}/_lakeplane/v1/status", timeout=30).json()
        assert status["clusters"]["cl_a"] == {
            **status["clusters"]["cl_a"],
            "in_flight": 0,
            "drained": True,
        }
    finally:
        g.stop()


def test_a_draining_cluster_whose_coordinator_is_gone_counts_as_drained(
    tmp_path: Path, coordinators: Any
) -> None:
    a, b = coordinators
    raw = raw_config(a, b)
    raw["groups"][0]["clusters"][0]["state"] = "draining"
    g = start_in_thread(parse_config(raw), KEY)
    try:
        assert requests.get(f"{g.url}/_lakeplane/v1/status", timeout=30).json()["clusters"]["cl_a"][
            "drained"
        ]
        a.stop()  # its coordinator is gone: down after fail_threshold (2) probes
        g.poll_health()
        status = requests.get(f"{g.url}/_lakeplane/v1/status", timeout=30).json()
        assert status["clusters"]["cl_a"]["health"] == "up"  # one failure: not yet down
        g.poll_health()
        status = requests.get(f"{g.url}/_lakeplane/v1/status", timeout=30).json()
        assert status["clusters"]["cl_a"] == {**status["clusters"]["cl_a"], "health": "down",
                                              "drained": True}  # fmt: skip
        assert status["clusters"]["cl_b"]["drained"] is False  # not draining
    finally:
        g.stop()


def test_an_invalid_new_config_keeps_the_last_good_one(tmp_path: Path, coordinators: Any) -> None:
    path = tmp_path / "gateway.json"
    raw = raw_config(*coordinators)
    path.write_text(json.dumps(raw))
    g = start_in_thread(parse_config(raw), KEY, path)
    try:
        path.write_text(json.dumps({**raw, "version": "bad", "default_group": "nope"}))
        assert reload_config(g.state) is False
        assert g.state.config.version == "v1"
        rows, _ = run_query(g.url)
        assert len(rows) == 30
    finally:
        g.stop()


class FakeAgent:
    """The agent's listener as the gateway sees it: a wake turns the cluster's coordinator on."""

    def __init__(self, on_wake: Any) -> None:
        self.wakes: list[str] = []
        self.records: list[dict[str, Any]] = []
        app = web.Application()

        async def wake(request: web.Request) -> web.Response:
            cluster = (await request.json())["cluster"]
            self.wakes.append(cluster)
            on_wake(cluster)
            return web.json_response({"status": "starting"}, status=202)

        async def queries(request: web.Request) -> web.Response:
            self.records.extend((await request.json())["queries"])
            return web.json_response({}, status=202)

        app.router.add_post("/v1/wake", wake)
        app.router.add_post("/v1/queries", queries)
        self.server = AppThread(app, name="agent")
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


def one_cluster_group(co: Coordinator, state: str) -> list[dict[str, Any]]:
    cluster = {
        "id": f"cl_{co.name}",
        "name": f"{co.name}-name",
        "engine": "trino",
        "url": co.url,
        "state": state,
    }
    return [{"name": "sleepy", "clusters": [cluster]}]


def test_a_query_to_a_sleeping_group_wakes_the_cluster_and_returns_rows(coordinators: Any) -> None:
    a, b = coordinators
    a.starting = True
    agent = FakeAgent(lambda cluster: setattr(a, "starting", False))
    fast = {
        "interval_seconds": 0.05,
        "timeout_seconds": 2,
        "fail_threshold": 2,
        "success_threshold": 2,
    }
    raw = raw_config(
        a,
        b,
        agent_url=agent.url,
        groups=one_cluster_group(a, "stopped"),
        default_group="sleepy",
        health=fast,
    )
    g = start_in_thread(parse_config(raw), KEY)
    try:
        rows, docs = run_query(g.url, "SELECT woken")
        assert agent.wakes == ["cl_a"]
        assert docs[0]["stats"]["state"] == "QUEUED"
        assert docs[0]["id"].startswith("gw_")
        assert len(rows) == 30
        assert a.statements == ["SELECT woken"]
    finally:
        g.stop()
        agent.stop()
    # The record of the query reached the agent without its text, valid for the contract.
    records = valid_records(agent.records)
    assert [(r.cluster_id, r.state) for r in records] == [("cl_a", "FINISHED")]
    assert "query_text" not in agent.records[0]
    assert agent.records[0]["routing_group"] == "sleepy"
    assert agent.records[0]["user"] == "alice"
    assert agent.records[0]["bytes_out"] > 0


def test_a_long_statement_survives_the_wait_in_its_signed_uri(coordinators: Any) -> None:
    a, b = coordinators
    a.starting = True
    agent = FakeAgent(lambda cluster: setattr(a, "starting", False))
    fast = {"interval_seconds": 0.05, "timeout_seconds": 2}
    raw = raw_config(a, b, agent_url=agent.url, groups=one_cluster_group(a, "stopped"),
                     default_group="sleepy", health=fast)  # fmt: skip
    # ~230 KB of literals: even compressed, far over aiohttp's default 8 KiB request line.
    long_sql = "SELECT " + ", ".join(f"'{i:06x}{hash(i) & 0xFFFFFFFF:08x}'" for i in range(12_000))
    g = start_in_thread(parse_config(raw), KEY)
    try:
        rows, docs = run_query(g.url, long_sql)
    finally:
        g.stop()
        agent.stop()
    assert docs[0]["stats"]["state"] == "QUEUED"
    assert len(rows) == 30
    assert a.statements == [long_sql]


def test_a_cluster_that_does_not_come_up_ends_in_a_clear_error(coordinators: Any) -> None:
    a, b = coordinators
    a.fail = True
    agent = FakeAgent(lambda cluster: None)
    raw = raw_config(
        a, b, agent_url=agent.url, groups=one_cluster_group(a, "suspended"), default_group="sleepy"
    )
    raw["wake"]["max_wait_seconds"] = 1
    g = start_in_thread(parse_config(raw), KEY)
    try:
        _, docs = run_query(g.url)
    finally:
        g.stop()
        agent.stop()
    error = docs[-1]["error"]
    assert error["errorName"] == "CLUSTER_WAKE_TIMEOUT"
    assert {d["id"] for d in docs} == {docs[0]["id"]}  # one query id from QUEUED to FAILED
    assert "a-name (cl_a) did not come up within 1 s" in error["message"]
    assert "500" in error["message"]  # why: what its coordinator answered
    assert a.statements == []
    records = valid_records(agent.records)
    assert [(r.query_id, r.cluster_id, r.state, r.error_name) for r in records] == [
        (docs[-1]["id"], "cl_a", "FAILED", "CLUSTER_WAKE_TIMEOUT")
    ]


def test_query_text_reaches_the_agent_only_when_turned_on(coordinators: Any) -> None:
    planted = "SELECT 'planted-secret-text'"
    for query_text in (False, True):
        agent = FakeAgent(lambda cluster: None)
        g = start_in_thread(
            parse_config(raw_config(*coordinators, agent_url=agent.url, query_text=query_text)), KEY
        )
        try:
            run_query(g.url, planted)
        finally:
            g.stop()
            agent.stop()
        texts = [r.query_text for r in valid_records(agent.records)]
        assert texts == ([planted] if query_text else [None])


def test_a_backend_that_refuses_connections_is_skipped_before_the_poller_notices(
    gateways: list[GatewayThread], coordinators: Any
) -> None:
    a = coordinators[0]
    g = gateways[0]
    a.stop()  # a dead process: connections refused
    assert g.state.health["cl_a"].state == "up"
    for _ in range(3):
        rows, docs = run_query(g.url)
        assert docs[0]["id"].startswith("b_")
        assert len(rows) == 30
