"""``manage.py runlakeplane``: the whole sandbox in one foreground command (``make run``).

Starts the web server, a Celery worker and Celery beat (and the local AWS emulator when no
AWS credentials are configured), prints where to go, and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

DEMO_ORG = "demo"
DEMO_EMAIL = "demo@lakeplane.local"


class Command(BaseCommand):
    help = "Run Lakeplane (web, worker, beat, and the sandbox AWS emulator) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--workers", type=int, default=2, help="web worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        port, host = options["port"], options["host"]
        base_url = f"http://{host}:{port}/"
        call_command("migrate", interactive=False, verbosity=0)
        password = self._demo_password()
        token = self._bootstrap(password)

        env = dict(os.environ)
        # Where compute-plane agents call back (local agents in the sandbox).
        env.setdefault("LAKEPLANE_PUBLIC_URL", base_url.rstrip("/"))
        processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        emulator = self._emulator_command()
        if emulator is not None:
            command, endpoint = emulator
            env["AWS_ENDPOINT_URL"] = endpoint
            processes.append(("aws-emulator", subprocess.Popen(command, env=env)))
        python = sys.executable
        processes += [
            (
                "web",
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "gunicorn",
                        "controlplane.wsgi:application",
                        "--bind",
                        f"{host}:{port}",
                        "--workers",
                        str(options["workers"]),
                        # Threads: each local agent's desired-state long poll holds one.
                        "--threads",
                        "8",
                        "--access-logfile",
                        "-",
                        "--graceful-timeout",
                        "5",
                    ],
                    env=env,
                ),
            ),
            (
                "worker",
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "controlplane",
                        "worker",
                        "-Q",
                        "provisioning,default,billing",
                        "--concurrency",
                        "2",
                        "--loglevel",
                        "INFO",
                    ],
                    env=env,
                ),
            ),
            (
                "beat",
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "celery",
                        "-A",
                        "controlplane",
                        "beat",
                        "--loglevel",
                        "INFO",
                        "--schedule",
                        str(Path(settings.DATA_DIR) / "celerybeat-schedule"),
                    ],
                    env=env,
                ),
            ),
        ]

        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self._wait_for(f"{base_url}healthz", processes)
        # Local agents of ready compute planes come back with their stored credentials; run in a
        # child so it sees the same settings as the worker (emulator endpoint, public URL).
        manage = [python, str(Path(__file__).resolve().parents[4] / "manage.py")]
        subprocess.run([*manage, "localagents", "start"], env=env, check=False)
        lines = [
            "",
            "Lakeplane is running (sandbox). Press Ctrl-C to stop.",
            f"  Console:   {base_url}",
            f"  Sign in:   {DEMO_EMAIL} / {password}",
            f"  API docs:  {base_url}api/docs/",
            f"  API token: token: {token}",
            f"  Try:       curl -H 'Authorization: Bearer {token}' {base_url}api/v1/me",
        ]
        if "AWS_ENDPOINT_URL" in env:
            lines.append(f"  AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}")
        self.stdout.write("\n".join(lines) + "\n")
        self.stdout.flush()

        try:
            while not stopping:
                for name, proc in processes:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping.")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            # Agents run in their own sessions (they outlive the task that started them), so
            # Ctrl-C does not reach them: stop them explicitly.
            subprocess.run([*manage, "localagents", "stop"], env=env, check=False)
            self._stop_all(processes)

    def _demo_password(self) -> str:
        path = Path(settings.DATA_DIR) / "demo_password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()

    def _bootstrap(self, password: str) -> str:
        from io import StringIO

        out = StringIO()
        call_command(
            "bootstrap", org=DEMO_ORG, email=DEMO_EMAIL, name="Demo", password=password, stdout=out
        )
        return out.getvalue().strip().removeprefix("token: ")

    def _emulator_command(self) -> tuple[list[str], str] | None:
        """The local AWS emulator, unless real AWS (credentials, no endpoint) is configured."""
        if os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_ENDPOINT_URL"):
            return None
        if os.environ.get("AWS_ENDPOINT_URL"):
            return None  # someone runs their own emulator
        import controlplane.sandbox

        default_port = getattr(controlplane.sandbox, "DEFAULT_PORT", 4566)
        port = int(os.environ.get("LAKEPLANE_EMULATOR_PORT", default_port))
        command = [sys.executable, "-m", "controlplane.sandbox", "serve", "--port", str(port)]
        return command, f"http://127.0.0.1:{port}"

    def _wait_for(self, url: str, processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our URL
                    if response.status == 200:
                        return
            except OSError:
                pass
            if any(proc.poll() is not None for _, proc in processes):
                return
            time.sleep(0.3)

    def _stop_all(self, processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for _, proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                proc.kill()
                proc.wait()
        self.stdout.write("Lakeplane stopped.\n")
