"""A stop signal ends an agent that waits in its desired-state long poll without waiting it out
(``make run``'s Ctrl-C and a plane's delete stop local agents; they used to take the full grace
period and a SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from computeplane_agent.contract import AgentCredential

REPO = Path(__file__).resolve().parents[2]


class HeldPolls(BaseHTTPRequestHandler):
    """Holds every desired-state long poll until the client goes away; records that it did."""

    polling = threading.Event()
    abandoned = threading.Event()

    def do_GET(self) -> None:
        HeldPolls.polling.set()
        self.connection.settimeout(120)
        try:
            gone = self.connection.recv(1) == b""  # blocks until the agent hangs up
        except TimeoutError:
            gone = False
        if gone:
            HeldPolls.abandoned.set()

    def log_message(self, *_: object) -> None:
        pass


def test_sigterm_during_the_long_poll_ends_the_agent_at_once(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HeldPolls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    credential = tmp_path / "credential.json"
    credential.write_text(
        AgentCredential(
            agent_id="agt_01hv0000000000000000000000",
            credential="lpa_" + "x" * 40,
            expires_at=datetime.now(UTC) + timedelta(days=1),
            compute_plane_id="cp_01hv0000000000000000000000",
        ).model_dump_json()
    )
    env = {
        **os.environ,
        "LAKEPLANE_CONTROL_PLANE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "LAKEPLANE_CREDENTIAL_FILE": str(credential),
        "LAKEPLANE_TARGET": "directory",
        "LAKEPLANE_DIRECTORY_ROOT": str(tmp_path / "manifests"),
        "LAKEPLANE_POLL_SECONDS": "100",  # the server may hold the poll this long
    }
    agent = subprocess.Popen(
        [sys.executable, "-m", "computeplane_agent", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert HeldPolls.polling.wait(60), "the agent never long-polled"
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0
        # It hung up on the held poll rather than waiting for an answer that never came.
        assert HeldPolls.abandoned.wait(10)
    finally:
        if agent.poll() is None:
            agent.kill()
        server.shutdown()
