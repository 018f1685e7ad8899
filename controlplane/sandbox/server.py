"""Run moto in server mode on loopback, behind the sandbox layer."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from controlplane.sandbox import persistence
from controlplane.sandbox.layer import SandboxLayer

log = logging.getLogger("lakeplane.sandbox")

DEFAULT_HOST = "127.0.0.1"
# The port LocalStack made familiar; docs/sandbox.md and `make run` assume it.
DEFAULT_PORT = 4566


class _QuietRequestHandler(MotoRequestHandler):
    """Tests and benches read the call log instead of one access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class SandboxCloud:
    """The emulator: moto's WSGI app wrapped by :class:`SandboxLayer`, served on a thread.

    ``port=0`` picks a free port (tests run one emulator per xdist worker). With ``state_path``
    the AWS state is restored from there on start, saved every ``snapshot_seconds`` when it
    changed and once more on stop (persistence.py; without it the state lives in memory only).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    access_log: bool = False
    state_path: Path | None = None
    snapshot_seconds: float = 30.0
    layer: SandboxLayer = field(init=False)
    _snapshots: persistence.Snapshotter | None = field(default=None, init=False, repr=False)
    _server: BaseWSGIServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.layer = SandboxLayer(DomainDispatcherApplication(create_backend_app))

    def _handler(self) -> type[MotoRequestHandler]:
        return MotoRequestHandler if self.access_log else _QuietRequestHandler

    def restore(self) -> str:
        """Before serving: ``restored``, ``empty`` (no snapshot) or ``refused`` (logged why)."""
        if self.state_path is None:
            return "empty"
        try:
            restored = self.layer.restore_state(self.state_path)
        except persistence.RestoreRefused as refused:
            log.error(
                "The emulator's saved AWS state in %s was NOT restored: %s. The emulator starts "
                "empty, so the AWS resources Lakeplane created before are gone; the drift check "
                "will show the affected compute planes as degraded, and `repair` rebuilds them. "
                "The old file is kept as %s%s.",
                self.state_path,
                refused,
                self.state_path.name,
                persistence.UNRESTORABLE_SUFFIX,
            )
            return "refused"
        if restored:
            log.info("The emulator's AWS state was restored from %s.", self.state_path)
            return "restored"
        return "empty"

    def _bind(self) -> BaseWSGIServer:
        self._server = make_server(
            self.host, self.port, self.layer, threaded=True, request_handler=self._handler()
        )
        self.port = int(self._server.server_address[1])
        if self.state_path is not None:
            self._snapshots = persistence.Snapshotter(
                self.state_path, self.layer.save_state, self.layer.changes, self.snapshot_seconds
            )
            self._snapshots.start()
        return self._server

    def start(self) -> SandboxCloud:
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"sandbox-cloud:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_until_signalled(self, ready: Callable[[], None] | None = None) -> None:
        """Serve in the foreground until SIGTERM or SIGINT, then stop (saving the state)."""
        server = self._bind()
        stopping = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"sandbox-cloud:{self.port}", daemon=True
        )
        self._thread.start()
        if ready is not None:
            ready()
        while not stopping.wait(1):
            pass
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._snapshots is not None:
            self._snapshots.stop()  # after the last request: the final state is what is saved
