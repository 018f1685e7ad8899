"""A real gunicorn serving the control plane against the test database, for end-to-end tests.

The server runs the sandbox settings with this test's ``DATABASE_URL`` (the pytest-django test
database, so rows the test commits under ``transactional_db`` are what the server reads) and,
when the test has one, its Redis broker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings.sandbox",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": str(settings.CELERY_BROKER_URL),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LAKEPLANE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    @classmethod
    def start(
        cls, tmp_path: Path, *, name: str = "gunicorn", workers: int = 2, **env: str
    ) -> Gunicorn:
        port = free_port()
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--config",
                    "python:controlplane.gunicorn_conf",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(workers),
                    "--threads",
                    "1",
                    "controlplane.wsgi",
                ],
                cwd=REPO_ROOT,
                env=server_env(tmp_path, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes its workers too
            )
        server = cls(process=process, base=f"http://127.0.0.1:{port}", log=log)
        try:
            server.wait_ready()
        except BaseException:
            server.kill()
            raise
        return server

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 180) -> None:
        # Generous: on a busy 2-core machine importing Django in each worker takes a while.
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.base}/healthz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up:\n{self.output()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the master and its workers: nothing gets to finish a request."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
