"""Runs one of the console's browser scripts (frontend/e2e/*.e2e.mjs) against the live server.

A script can ask the test for something only the server side can do (play the customer in the
emulator, deliver an operation's steps): it prints ``ASK <words>`` on stdout and reads the
answer, one line, from stdin. ``answer`` turns the words into that line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from pytest_django.live_server_helper import LiveServer

from tests.e2e.test_console_browser import FRONTEND, _require_toolchain

# Bounds the whole run, so a wedged browser fails the test instead of hanging CI.
BROWSER_RUN_TIMEOUT_S = 300


def run_browser_script(
    script: str,
    live_server: LiveServer,
    tmp_path: Path,
    env: dict[str, str],
    answer: Callable[[list[str]], str] | None = None,
) -> Path:
    """Runs frontend/e2e/<script>; fails with its output unless every check passed. Returns the
    artifacts directory (screenshots)."""
    node = _require_toolchain()
    artifacts = Path(os.environ.get("LAKEPLANE_E2E_ARTIFACTS", tmp_path / "artifacts"))
    full_env = {
        **os.environ,
        "LAKEPLANE_BASE_URL": live_server.url,
        "LAKEPLANE_E2E_ARTIFACTS": str(artifacts),
        **env,
    }
    stderr_file = tmp_path / f"{script}.stderr"
    lines: list[str] = []
    with (
        stderr_file.open("w") as stderr,
        subprocess.Popen(
            [node, str(FRONTEND / "e2e" / script)],
            cwd=FRONTEND,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as browser,
    ):
        assert browser.stdout is not None
        assert browser.stdin is not None
        try:
            for line in browser.stdout:
                lines.append(line)
                if line.startswith("ASK "):
                    assert answer is not None, f"{script} asked {line!r} and nobody answers"
                    browser.stdin.write(answer(line.split()[1:]) + "\n")
                    browser.stdin.flush()
            browser.wait(timeout=BROWSER_RUN_TIMEOUT_S)
        finally:
            if browser.poll() is None:
                browser.kill()
    output = f"--- stdout ---\n{''.join(lines)}\n--- stderr ---\n{stderr_file.read_text()}"
    assert browser.returncode == 0, f"{script} failed (exit {browser.returncode})\n{output}"
    assert "all checks passed" in output, output
    return artifacts
