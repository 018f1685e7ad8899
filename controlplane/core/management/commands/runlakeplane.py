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
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_ORG = "demo"
DEMO_EMAIL = "demo@lakeplane.local"
# Each start rotates this one token: the previous one is revoked, the new one expires.
SANDBOX_TOKEN_NAME = "sandbox"  # noqa: S105 - a label, not a secret
SANDBOX_TOKEN_DAYS = 7
EMULATOR_STATE_FILE = "emulator-state.pickle"


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
        token = bootstrap_demo(password)

        env = dict(os.environ)
        # Where compute-plane agents call back (local agents in the sandbox).
        env.setdefault("LAKEPLANE_PUBLIC_URL", base_url.rstrip("/"))
        processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        emulator = self._emulator_command()
        if emulator is not None:
            command, endpoint = emulator
            env["AWS_ENDPOINT_URL"] = endpoint
            from controlplane.sandbox import endpoint as emulator_endpoint

            emulator_endpoint.record(settings.DATA_DIR, endpoint)
            processes.append(
                ("aws-emulator", subprocess.Popen(command, env=env, start_new_session=True))
            )
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
                    start_new_session=True,
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
                    start_new_session=True,
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
                    start_new_session=True,
                ),
            ),
        ]

        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed = self._wait_for(f"{base_url}healthz", processes)
        if failed is not None:
            # The banner is a promise that everything is up: never print it before a failure.
            self.stderr.write(f"{failed}; stopping.")
            self._stop_all(processes)
            raise SystemExit(1)
        # Local agents of ready compute planes come back with their stored credentials; run in a
        # child so it sees the same settings as the worker (emulator endpoint, public URL).
        manage = [python, str(Path(__file__).resolve().parents[4] / "manage.py")]
        subprocess.run([*manage, "localagents", "start"], env=env, check=False)
        self.stdout.write("\n".join(banner_lines(base_url, password, token, env)) + "\n")
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
            if emulator is not None:
                from controlplane.sandbox import endpoint as emulator_endpoint

                emulator_endpoint.forget(settings.DATA_DIR)

    def _demo_password(self) -> str:
        path = Path(settings.DATA_DIR) / "demo_password"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()

    def _emulator_command(self) -> tuple[list[str], str] | None:
        """The local AWS emulator, unless real AWS (credentials, no endpoint) is configured."""
        if os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_ENDPOINT_URL"):
            return None
        if os.environ.get("AWS_ENDPOINT_URL"):
            return None  # someone runs their own emulator
        from controlplane.sandbox.endpoint import PORT_VARIABLE, PortTaken, choose_port
        from controlplane.sandbox.server import DEFAULT_PORT

        try:
            port = choose_port(os.environ.get(PORT_VARIABLE))
        except PortTaken as exc:
            raise CommandError(str(exc)) from exc
        if port != DEFAULT_PORT and not os.environ.get(PORT_VARIABLE):
            self.stdout.write(
                f"Port {DEFAULT_PORT} is taken; the AWS emulator uses port {port} "
                f"(set {PORT_VARIABLE} to choose one)."
            )
        # The emulator's AWS state outlives a restart (docs/sandbox.md, "Restarts").
        command = [
            sys.executable,
            "-m",
            "controlplane.sandbox",
            "serve",
            "--port",
            str(port),
            "--state-file",
            str(Path(settings.DATA_DIR) / EMULATOR_STATE_FILE),
            "--snapshot-seconds",
            os.environ.get("LAKEPLANE_EMULATOR_SNAPSHOT_SECONDS", "30"),
        ]
        return command, f"http://127.0.0.1:{port}"

    def _wait_for(
        self, url: str, processes: list[tuple[str, subprocess.Popen[bytes]]]
    ) -> str | None:
        """None once the web answers and every component still runs, else what went wrong."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, proc in processes:
                if proc.poll() is not None:
                    return f"{name} exited with {proc.returncode} while starting"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our URL
                    if response.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            return f"the web server did not answer {url} within 60 s"
        # Worker and beat fail fast on bad settings: give them a moment to do so.
        time.sleep(1)
        for name, proc in processes:
            if proc.poll() is not None:
                return f"{name} exited with {proc.returncode} while starting"
        return None

    def _stop_all(self, processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        stop_in_order(processes, self.stderr.write)
        self.stdout.write("Lakeplane stopped.\n")


def bootstrap_demo(password: str) -> str:
    """The demo organization and owner (idempotent); the rotated sandbox token, bare."""
    from io import StringIO

    out = StringIO()
    call_command(
        "bootstrap",
        org=DEMO_ORG,
        email=DEMO_EMAIL,
        name="Demo",
        password=password,
        token_name=SANDBOX_TOKEN_NAME,
        expires_in_days=SANDBOX_TOKEN_DAYS,
        stdout=out,
    )
    # bootstrap prints "token: <secret>" for people; the banner labels it itself.
    return out.getvalue().strip().removeprefix("token: ")


def banner_lines(base_url: str, password: str, token: str, env: dict[str, str]) -> list[str]:
    """What ``make run`` prints once every component is up."""
    lines = [
        "",
        "Lakeplane is running (sandbox). Press Ctrl-C to stop.",
        f"  Console:   {base_url}",
        f"  Sign in:   {DEMO_EMAIL} / {password}",
        f"  API docs:  {base_url}api/docs/",
        f"  API token: {token} (valid {SANDBOX_TOKEN_DAYS} days; the next start replaces it)",
        f"  Try:       curl -H 'Authorization: Bearer {token}' {base_url}api/v1/me",
    ]
    if "AWS_ENDPOINT_URL" in env:
        lines.append(f"  AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}")
    return lines


def stop_in_order(
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    warn: Any,
    timeout: float = 15,
) -> list[str]:
    """Stop components newest first, each with SIGTERM, one after the other; the stop order.

    The children run in their own sessions, so the terminal's Ctrl-C reaches only this command:
    gunicorn's master then gets one SIGTERM (a graceful stop of its workers) instead of a SIGINT
    to every process at once, which made it SIGKILL workers that were already exiting. The web
    order is beat (no new tasks), worker, web, and last the emulator, which they may still call.
    """
    stopped: list[str] = []
    for name, proc in reversed(processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                warn(f"{name} did not stop in time; killing it.")
                proc.kill()
                proc.wait()
        stopped.append(name)
    return stopped
