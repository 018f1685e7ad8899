"""/metrics under gunicorn with several workers merges every worker's metrics.

A real gunicorn (two sync workers, one thread each) with ``PROMETHEUS_MULTIPROC_DIR`` and
``controlplane.gunicorn_conf``: requests sent ten at a time land on both workers, and every
scrape, whichever worker answers it, counts all of them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 40


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthz_count(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "django_http_requests_total_by_view_transport_method_total"
                and sample.labels.get("view") == "healthz"
            ):
                return sample.value
    return 0.0


@pytest.mark.usefixtures("transactional_db")
def test_every_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
        "DATABASE_URL": _database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
        "LAKEPLANE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "python:controlplane.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "1",
                "controlplane.wsgi",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        warmup = _healthz_count(base)  # the readiness probes above

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(
                pool.map(
                    lambda _: requests.get(f"{base}/healthz", timeout=10).status_code,
                    range(REQUESTS),
                )
            )
        assert statuses == [200] * REQUESTS
        workers = {
            line.split("pid: ")[1].split(")")[0]
            for line in log.read_text().splitlines()
            if "Booting worker with pid" in line
        }
        assert len(workers) == 2, log.read_text()
        for _ in range(6):  # whichever worker answers the scrape
            assert _healthz_count(base) == warmup + REQUESTS
    finally:
        server.terminate()
        server.wait(timeout=30)
