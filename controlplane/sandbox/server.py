"""Run moto in server mode on loopback, behind the sandbox layer."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from controlplane.sandbox.layer import SandboxLayer

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

    ``port=0`` picks a free port (tests run one emulator per xdist worker).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    access_log: bool = False
    layer: SandboxLayer = field(init=False)
    _server: BaseWSGIServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.layer = SandboxLayer(DomainDispatcherApplication(create_backend_app))

    def _handler(self) -> type[MotoRequestHandler]:
        return MotoRequestHandler if self.access_log else _QuietRequestHandler

    def start(self) -> SandboxCloud:
        self._server = make_server(
            self.host, self.port, self.layer, threaded=True, request_handler=self._handler()
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sandbox-cloud:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = make_server(
            self.host, self.port, self.layer, threaded=True, request_handler=self._handler()
        )
        self._server.serve_forever()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
