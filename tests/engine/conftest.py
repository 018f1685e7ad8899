"""Fixtures: sandbox engines in this process (real HTTP, real DuckDB) and DuckDB's own answers."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from controlplane.sandbox.engine.server import Engine, EngineThread, Knobs
from controlplane.sandbox.engine.sql import tpch_extension_path


def start_engine(engine: str = "trino", workers: int = 2, **kw: object) -> EngineThread:
    thread = EngineThread(Engine(engine, knobs=Knobs(workers=workers), **kw))  # type: ignore[arg-type]
    thread.wait_loaded()
    return thread


@pytest.fixture(scope="module")
def trino_engine() -> Iterator[EngineThread]:
    thread = start_engine("trino")
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def presto_engine() -> Iterator[EngineThread]:
    thread = start_engine("presto")
    yield thread
    thread.stop()


@pytest.fixture(autouse=True)
def _default_knobs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Module-scoped engines get their knobs back after each test."""
    yield
    for name in ("trino_engine", "presto_engine"):
        if name in request.fixturenames:
            request.getfixturevalue(name).set(
                workers=2, starting=False, fail=False, delay_seconds=0.0, query_seconds=0.0
            )


@pytest.fixture(scope="session")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    """TPC-H sf 0.01 straight from DuckDB: what the engine's answers are compared with."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    con.execute(f"LOAD '{tpch_extension_path()}'")
    con.execute("CALL dbgen(sf=0.01)")
    yield con
    con.close()
