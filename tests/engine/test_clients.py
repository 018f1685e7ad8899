"""The real clients, unmodified, straight against the sandbox engine; rows compared with DuckDB."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import duckdb
import prestodb
import pytest
import requests
import sqlalchemy
import trino

from controlplane.sandbox.engine.server import EngineThread

MULTI_PAGE = (
    "SELECT orderkey, linenumber, quantity, shipdate, returnflag, comment "
    "FROM tpch.tiny.lineitem ORDER BY orderkey, linenumber"
)
MULTI_PAGE_DUCKDB = (
    "SELECT l_orderkey, l_linenumber, l_quantity, l_shipdate, l_returnflag, l_comment "
    "FROM lineitem ORDER BY l_orderkey, l_linenumber"
)


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def trino_conn(url: str, **kw: Any) -> trino.dbapi.Connection:
    host, port = host_port(url)
    return trino.dbapi.connect(host=host, port=port, user="alice", source="tests", **kw)


def presto_conn(url: str, **kw: Any) -> prestodb.dbapi.Connection:
    host, port = host_port(url)
    return prestodb.dbapi.connect(host=host, port=port, user="alice", source="tests", **kw)


def last_query(engine: EngineThread) -> Any:
    return list(engine.engine.queries.values())[-1]


def test_trino_dbapi_counts_lineitem(trino_engine: EngineThread, duck: Any) -> None:
    cur = trino_conn(trino_engine.url).cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    assert cur.fetchall() == [[60175]]
    assert duck.execute("SELECT count(*) FROM lineitem").fetchall() == [(60175,)]
    assert cur.description[0][0] == "_col0"
    assert cur.description[0][1] == "bigint"


def test_trino_dbapi_multi_page_query_returns_duckdbs_rows(
    trino_engine: EngineThread, duck: Any
) -> None:
    cur = trino_conn(trino_engine.url).cursor()
    cur.execute(MULTI_PAGE)
    rows = [tuple(r) for r in cur.fetchall()]
    expected = duck.execute(MULTI_PAGE_DUCKDB).fetchall()
    assert len(rows) == 60175
    assert rows == expected
    assert isinstance(rows[0][2], Decimal)
    assert last_query(trino_engine).pages_served > 10  # 4,096 rows a page


def test_trino_sqlalchemy_dialect(trino_engine: EngineThread, duck: Any) -> None:
    host, port = host_port(trino_engine.url)
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
        tables = sqlalchemy.inspect(con).get_table_names("tiny")
    expected = duck.execute(
        "SELECT l_orderkey, l_linenumber, l_extendedprice FROM lineitem "
        "WHERE l_orderkey < 20000 ORDER BY 1, 2"
    ).fetchall()
    assert count == 60175
    assert [tuple(r) for r in rows] == expected
    assert len(expected) > 4096 * 2  # several pages
    assert set(tables) >= {"lineitem", "orders", "nation", "region"}


def test_presto_client_against_a_presto_engine(presto_engine: EngineThread, duck: Any) -> None:
    cur = presto_conn(presto_engine.url, catalog="tpch", schema="tiny").cursor()
    cur.execute("SELECT count(*) FROM lineitem")
    assert cur.fetchall() == [[60175]]
    cur.execute(
        "SELECT orderkey, linenumber, returnflag, comment FROM lineitem "
        "ORDER BY orderkey, linenumber"
    )
    rows = [tuple(r) for r in cur.fetchall()]
    expected = duck.execute(
        "SELECT l_orderkey, l_linenumber, l_returnflag, l_comment FROM lineitem ORDER BY 1, 2"
    ).fetchall()
    assert rows == expected
    assert last_query(presto_engine).pages_served > 10


def test_each_engine_speaks_only_its_header_family(
    trino_engine: EngineThread, presto_engine: EngineThread
) -> None:
    with pytest.raises(prestodb.exceptions.HttpError, match="X-Trino-User must be set"):
        presto_conn(trino_engine.url).cursor().execute("SELECT 1")
    with pytest.raises(trino.exceptions.HttpError, match="X-Presto-User must be set"):
        trino_conn(presto_engine.url).cursor().execute("SELECT 1")
    resp = requests.post(
        f"{presto_engine.url}/v1/statement",
        data="USE tpch.tiny",
        headers={"X-Presto-User": "alice"},
        timeout=10,
    )
    doc = resp.json()
    while "nextUri" in doc:
        resp = requests.get(doc["nextUri"], timeout=10)
        doc = resp.json()
    assert resp.headers["X-Presto-Set-Schema"] == "tiny"
    assert "X-Trino-Set-Schema" not in resp.headers


def test_session_catalog_schema_and_the_memory_catalog(trino_engine: EngineThread) -> None:
    conn = trino_conn(trino_engine.url)
    cur = conn.cursor()
    cur.execute("USE memory.default")
    cur.fetchall()
    cur = conn.cursor()
    # Unqualified: the client took X-Trino-Set-Catalog/-Schema and sends them from now on.
    cur.execute("CREATE TABLE nations AS SELECT nationkey, name FROM tpch.tiny.nation")
    assert cur.fetchall() == [[25]]
    cur.execute("INSERT INTO nations VALUES (100, 'ATLANTIS')")
    assert cur.fetchall() == [[1]]
    cur.execute("SELECT name FROM memory.default.nations WHERE nationkey >= 24 ORDER BY 1")
    assert cur.fetchall() == [["ATLANTIS"], ["UNITED STATES"]]
    cur.execute("SHOW TABLES FROM memory.default")
    assert ["nations"] in cur.fetchall()
    cur.execute("DROP TABLE nations")
    cur.fetchall()


def test_errors_come_in_the_protocols_shape(trino_engine: EngineThread) -> None:
    cur = trino_conn(trino_engine.url, catalog="tpch", schema="tiny").cursor()
    with pytest.raises(trino.exceptions.TrinoUserError) as syntax:
        cur.execute("SELECT FROM WHERE")
    assert syntax.value.error_name == "SYNTAX_ERROR"
    assert syntax.value.error_location is not None
    with pytest.raises(trino.exceptions.TrinoUserError) as missing:
        cur.execute("SELECT * FROM no_such_table")
    assert missing.value.error_name == "TABLE_NOT_FOUND"
    with pytest.raises(trino.exceptions.TrinoUserError) as catalog:
        trino_conn(trino_engine.url, catalog="hive", schema="x").cursor().execute("SELECT 1")
    assert catalog.value.error_name == "CATALOG_NOT_FOUND"


def _post(url: str, sql: str) -> dict[str, Any]:
    resp = requests.post(
        f"{url}/v1/statement", data=sql, headers={"X-Trino-User": "alice"}, timeout=10
    )
    resp.raise_for_status()
    return resp.json()


def _until(check: Any, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_queued_then_running_then_finished_capped_by_workers(trino_engine: EngineThread) -> None:
    trino_engine.set(workers=0)
    first = _post(trino_engine.url, "SELECT 1")
    assert first["stats"]["state"] == "QUEUED"
    assert "/v1/statement/queued/" in first["nextUri"]
    again = requests.get(first["nextUri"], timeout=10).json()
    assert again["stats"]["state"] == "QUEUED"  # no worker: it waits
    assert requests.get(f"{trino_engine.url}/v1/cluster", timeout=10).json()["queuedQueries"] == 1

    trino_engine.set(workers=1, query_seconds=60)
    second = _post(trino_engine.url, "SELECT 2")
    _until(lambda: trino_engine.engine.executing == 1, "the first query runs")
    stats = requests.get(f"{trino_engine.url}/v1/cluster", timeout=10).json()
    assert (stats["runningQueries"], stats["queuedQueries"], stats["activeWorkers"]) == (1, 1, 1)
    nodes = requests.get(f"{trino_engine.url}/v1/node", timeout=10).json()
    assert len(nodes) == 1

    states = []
    doc = again
    trino_engine.set(query_seconds=0.0, workers=2)
    while "nextUri" in doc:
        doc = requests.get(doc["nextUri"], timeout=10).json()
        states.append(doc["stats"]["state"])
    assert states[-1] == "FINISHED"
    assert doc["data"] == [[1]]
    requests.delete(second["nextUri"], timeout=10)


def test_delete_cancels_a_query_duckdb_is_running(trino_engine: EngineThread) -> None:
    # Far too big to finish during the test: only an interrupt ends it.
    doc = _post(
        trino_engine.url,
        "SELECT sum(a.orderkey * b.linenumber * c.nationkey) "
        "FROM tpch.tiny.lineitem a, tpch.tiny.lineitem b, tpch.tiny.nation c",
    )
    _until(lambda: trino_engine.engine.executing == 1, "the query runs in DuckDB")
    assert requests.delete(doc["nextUri"], timeout=10).status_code == 204
    _until(lambda: trino_engine.engine.executing == 0, "DuckDB stops the cancelled query")
    query = trino_engine.engine.queries[doc["id"]]
    assert query.state == "FAILED"
    assert query.error is not None
    assert query.error.name == "USER_CANCELED"
    assert (
        requests.get(f"{trino_engine.url}/v1/cluster", timeout=10).json()["runningQueries"] == 0
    ), [(q.statement, q.state) for q in trino_engine.engine.queries.values() if not q.delivered]


def test_trino_client_cancel(trino_engine: EngineThread) -> None:
    trino_engine.set(query_seconds=120)
    cur = trino_conn(trino_engine.url).cursor()
    outcome: list[Any] = []

    def run() -> None:
        try:
            cur.execute("SELECT 1")
            outcome.append(cur.fetchall())
        except trino.exceptions.TrinoUserError as exc:
            outcome.append(exc.error_name)

    worker = threading.Thread(target=run)
    worker.start()
    _until(lambda: trino_engine.engine.running_count() == 1, "the query is running")
    _until(lambda: cur.query_id is not None, "the client has the query id")
    cur.cancel()
    worker.join(30)
    query = trino_engine.engine.queries[cur.query_id]
    assert query.state == "FAILED"
    assert query.error is not None
    assert query.error.name == "USER_CANCELED"
    assert trino_engine.engine.running_count() == 0
    assert outcome in ([], ["USER_CANCELED"])  # the client stops or sees the cancel


def test_knobs_fail_slow_and_starting(trino_engine: EngineThread) -> None:
    info = f"{trino_engine.url}/v1/info"
    assert requests.get(info, timeout=10).json()["starting"] is False
    trino_engine.set(starting=True)
    assert requests.get(info, timeout=10).json()["starting"] is True
    assert _raw_status(trino_engine.url) == 503
    trino_engine.set(starting=False, fail=True)
    assert requests.get(info, timeout=10).status_code == 503
    assert requests.get(f"{trino_engine.url}/v1/cluster", timeout=10).status_code == 503
    trino_engine.set(fail=False, delay_seconds=5)
    with pytest.raises(requests.Timeout):
        requests.get(info, timeout=0.5)
    trino_engine.set(delay_seconds=0.0)
    assert requests.get(info, timeout=10).status_code == 200


def _raw_status(url: str) -> int:
    return requests.post(
        f"{url}/v1/statement", data="SELECT 1", headers={"X-Trino-User": "a"}, timeout=10
    ).status_code


def test_control_endpoint_validates_and_applies(trino_engine: EngineThread) -> None:
    control = f"{trino_engine.url}/_lakeplane/engine"
    bad = requests.post(control, json={"workers": -1, "fail": "yes", "speed": 3}, timeout=10)
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"workers", "fail", "speed"}
    ok = requests.post(control, json={"workers": 3}, timeout=10)
    assert ok.status_code == 200
    assert ok.json()["workers"] == 3
    assert requests.get(f"{trino_engine.url}/v1/cluster", timeout=10).json()["activeWorkers"] == 3
    assert len(requests.get(f"{trino_engine.url}/v1/node", timeout=10).json()) == 3


def test_duckdb_is_the_reference(duck: duckdb.DuckDBPyConnection) -> None:
    # The comparison data itself: the TPC-H tiny schema's standard row counts.
    counts = {
        t: duck.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]  # noqa: S608
        for t in ("lineitem", "orders", "customer", "nation", "region")
    }
    assert counts == {
        "lineitem": 60175, "orders": 15000, "customer": 1500, "nation": 25, "region": 5,
    }  # fmt: skip
