"""/metrics under gunicorn with several workers merges every worker's metrics.

A real gunicorn (two sync workers, one thread each) with ``PROMETHEUS_MULTIPROC_DIR`` and
``controlplane.gunicorn_conf``: requests sent ten at a time land on both workers, and every
scrape, whichever worker answers it, counts all of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.live import Gunicorn

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

REQUESTS = 40


def _readyz_count(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "django_http_requests_total_by_view_transport_method_total"
                and sample.labels.get("view") == "readyz"
            ):
                return sample.value
    return 0.0


@pytest.mark.usefixtures("transactional_db")
def test_every_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    server = Gunicorn.start(
        tmp_path, workers=2, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "multiproc")
    )
    base = server.base
    try:
        # /readyz, not /healthz: a start-up probe to /healthz that timed out on a busy machine
        # may still be counted after any baseline taken here. Nothing else calls /readyz.
        assert _readyz_count(base) == 0

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(
                pool.map(
                    lambda _: requests.get(f"{base}/readyz", timeout=30).status_code,
                    range(REQUESTS),
                )
            )
        assert statuses == [200] * REQUESTS
        workers = {
            line.split("pid: ")[1].split(")")[0]
            for line in server.output().splitlines()
            if "Booting worker with pid" in line
        }
        assert len(workers) == 2, server.output()
        for _ in range(6):  # whichever worker answers the scrape
            assert _readyz_count(base) == REQUESTS
    finally:
        server.stop()
