"""Where the running sandbox emulator listens: chosen once by ``make run``, kept in ``.data/``.

``make run`` picks the port (``LAKEPLANE_EMULATOR_PORT``, else 4566, else a free one when 4566
is taken), and writes the emulator's URL to ``<data dir>/emulator-endpoint``; the sandbox
management commands read it there, so they need no ``AWS_ENDPOINT_URL`` prefix.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from controlplane.sandbox.server import DEFAULT_HOST, DEFAULT_PORT

PORT_VARIABLE = "LAKEPLANE_EMULATOR_PORT"
ENDPOINT_FILE = "emulator-endpoint"


class PortTaken(Exception):
    pass


def _is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the emulator's server binds (werkzeug reuses addresses): the connections of an
        # emulator that just stopped linger in TIME_WAIT and must not count as "taken", or a
        # quick restart would move to another port. A live listener still refuses the bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(configured: str | None, host: str = DEFAULT_HOST) -> int:
    """The emulator's port: the configured one (must be free), else the default, else any free.

    Raises ``PortTaken`` naming ``LAKEPLANE_EMULATOR_PORT`` when the configured port is in use or
    not a port number.
    """
    if configured:
        if not configured.isdigit() or not 0 < int(configured) < 65536:
            raise PortTaken(f"{PORT_VARIABLE}={configured!r} is not a port number (1-65535).")
        port = int(configured)
        if not _is_free(host, port):
            raise PortTaken(
                f"Port {port} ({PORT_VARIABLE}) is already in use: stop what listens there, or "
                f"set {PORT_VARIABLE} to another port (or unset it to pick a free one)."
            )
        return port
    if _is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def record(data_dir: str | Path, endpoint_url: str) -> None:
    path = Path(data_dir) / ENDPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(endpoint_url + "\n")


def forget(data_dir: str | Path) -> None:
    (Path(data_dir) / ENDPOINT_FILE).unlink(missing_ok=True)


def running_endpoint(data_dir: str | Path) -> str | None:
    """The recorded emulator's URL if something answers there, else None."""
    path = Path(data_dir) / ENDPOINT_FILE
    if not path.exists():
        return None
    url = path.read_text().strip()
    host, _, port = url.removeprefix("http://").partition(":")
    if not port.isdigit():
        return None
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
        return url
    return None
