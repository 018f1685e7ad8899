"""Local processes the sandbox supervisor runs (engines, the plane's gateway): ports and pids."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

STOP_GRACE_SECONDS = 5.0
ENGINE_MARKER = b"controlplane.sandbox.engine"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As the engine's server binds (SO_REUSEADDR): connections of the stopped engine in
        # TIME_WAIT do not keep its port from being used again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def is_engine(pid: int | None, marker: bytes = ENGINE_MARKER) -> bool:
    """True if ``pid`` is a live (not zombie) process of ours: a sandbox engine, or the process
    ``marker`` names (its command line holds it), so a reused pid is never taken for ours."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        serving = marker != ENGINE_MARKER or b"serve" in cmdline
        return state != "Z" and marker in cmdline and serving
    return True


def stop_process(pid: int, marker: bytes = ENGINE_MARKER) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and is_engine(pid, marker):
        time.sleep(0.05)
    if is_engine(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
