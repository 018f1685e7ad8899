"""gunicorn settings for the control plane: ``gunicorn --config python:controlplane.gunicorn_conf``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps every worker's metrics in files
there and ``/metrics`` merges them (docs/observability.md). The master empties the directory when
it starts, so counters of an earlier run do not linger, and marks a worker's files dead when the
worker exits. Everything else comes from ``GUNICORN_CMD_ARGS`` (the ConfigMap).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: Any) -> None:
    if MULTIPROC_DIR:
        path = Path(MULTIPROC_DIR)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
