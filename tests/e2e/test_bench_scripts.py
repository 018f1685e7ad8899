"""Every bench/*.py runs as bench/README.md says, at a tiny size, on the default code path.

Three benchmarks once failed as committed (planes that never became ready without a web server
for their agents, a 200 asserted where write-behind ingestion answers 202, liveness asserted
before ingestion flushed); this runs each one to its verdict so that cannot happen again. A
tiny run judges nothing: a goal line reading "NOT met" (a ratio on a busy machine, say) is a
figure, not a failure; a crash, an assertion or a traceback is. Figures worth recording come
from full-size runs (bench/RESULTS.md).

PostgreSQL benches need ``DATABASE_URL`` (each gets its own database next to it); ``wrk`` is
needed by two of them; ``bench/computeplanes.py`` empties the Redis database it is given, so it
runs only with ``LAKEPLANE_BENCH_BROKER_URL`` naming one of its own (``.ci/run`` sets one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted(p.name for p in (ROOT / "bench").glob("*.py"))

# Tiny sizes; every flag is one bench/README.md documents.
RUNS: dict[str, list[str]] = {
    "verification.py": ["--runs", "1"],
    "console_build.py": ["--no-build"],
    "render.py": ["--runs", "1", "--clusters", "2", "--workers", "2"],
    "autoscaling.py": ["--decisions", "300", "--clusters", "2", "--minutes", "2"],
    "gateway.py": ["--seconds", "0.5", "--clients", "1"],
    "drift.py": ["--clusters", "0,1", "--runs", "1"],
    "clusters.py": ["--lifecycles", "1"],
    "catalog_propagation.py": ["--sizes", "1,2", "--rounds", "1"],
    "computeplanes.py": ["--planes", "2", "--workers", "1", "--idle", "1", "--timeout", "300"],
    "api_throughput.py": [
        *("--duration", "1", "--warmup", "1", "--rounds", "1", "--connections", "2"),
        *("--workers", "1", "--operations", "60"),
    ],
    "billing.py": ["--rows", "20000", "--orgs", "20", "--months", "2", "--runs", "3"],
    "sql_paths.py": ["--requests", "16", "--planes", "2", "--clusters", "2"],
    "load.py": [*("--agents", "4,8", "--duration", "1", "--threads", "1", "--workers", "1")],
    "agent_ingest.py": [
        *("--duration", "1", "--warmup", "1", "--rounds", "1", "--connections", "2"),
        *("--workers", "1", "--agents", "5"),
    ],
}
POSTGRES = {"clusters.py", "catalog_propagation.py", "computeplanes.py", "billing.py"} | {
    "sql_paths.py",
    "api_throughput.py",
    "agent_ingest.py",
    "load.py",
}
WRK = {"api_throughput.py", "agent_ingest.py", "load.py"}


def test_every_bench_script_has_a_tiny_run() -> None:
    assert sorted(RUNS) == BENCHES
    readme = (ROOT / "bench" / "README.md").read_text()
    for script in BENCHES:
        assert f"## {script}" in readme, f"bench/README.md does not say how to run {script}"


def bench_database(script: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"{parts.path.lstrip('/')}_bench_{script.removesuffix('.py')}"
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.parametrize("script", BENCHES)
def test_bench_script_runs_to_its_verdict(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEPLANE_AGENT_INGEST")}
    if script in POSTGRES:
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            pytest.skip(f"{script} needs PostgreSQL (DATABASE_URL)")
        env["DATABASE_URL"] = bench_database(script)
    else:
        env.pop("DATABASE_URL", None)
    if script in WRK and shutil.which("wrk") is None:
        pytest.skip(f"{script} needs wrk (apt-get install wrk)")
    if script == "computeplanes.py":
        broker = os.environ.get("LAKEPLANE_BENCH_BROKER_URL")
        if not broker:
            pytest.skip(
                "computeplanes.py empties its Redis database: set LAKEPLANE_BENCH_BROKER_URL"
            )
        env["CELERY_BROKER_URL"] = broker
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *RUNS[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-6000:]
    assert "AssertionError" not in output, output[-6000:]
    if done.returncode != 0:
        # Only a goal missed at this size may end it non-zero, and then it says which.
        assert done.returncode == 1, output[-6000:]
        assert "NOT met" in output, output[-6000:]
    assert any(ch.isdigit() for ch in done.stdout), output[-6000:]  # it printed figures
