"""The emulator's AWS state survives a restart: snapshots of moto's backends in ``.data/``.

Why moto's own backends and not a replay of the calls the layer saw (docs/sandbox.md): the
control plane stores the identifiers AWS generated — ``vpc-…``, ``subnet-…``, ``sg-…``, node
group ARNs, the random suffix of a secret's ARN — and moto draws those at random; its custom-id
hook does not cover EC2. Replaying the calls would rebuild a cloud with the same names and
different ids, which the database does not point at. A snapshot of the backend objects brings
back exactly the resources that existed, ids included.

What it cannot do is cross moto versions: the objects are moto's classes, and a snapshot taken
by another moto (or Python) could unpickle into half-compatible objects that fail later, deep
inside a call. So a snapshot records the versions it was taken with, and a restore with other
versions (or one that fails in any way) is refused *loudly*: the emulator starts empty, says so
on stderr, and keeps the old file aside. Lakeplane's drift check then finds what is missing and
shows the planes as ``degraded``, with ``repair`` — never a silent "ready" over nothing.

The file is a trusted local cache of your own sandbox (it is unpickled): never load one from
elsewhere.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import moto
from moto.backends import get_backend
from moto.core.base_backend import BackendDict, backend_lock

log = logging.getLogger("lakeplane.sandbox.persistence")

FORMAT = 1
STATE_FILE = "emulator-state.pickle"
UNRESTORABLE_SUFFIX = ".unrestorable"


def versions() -> dict[str, str]:
    """What a snapshot must have been taken with to be restored."""
    return {
        "format": str(FORMAT),
        "moto": moto.__version__,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    }


class SharedExclusiveLock:
    """Many AWS calls at once (shared), or one snapshot alone (exclusive).

    A snapshot waits for the calls in flight to finish and holds new ones back meanwhile, so it
    never pickles a backend halfway through a call.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._shared:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def _new_lock(reentrant: bool) -> Any:
    return threading.RLock() if reentrant else threading.Lock()


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


class _Pickler(pickle.Pickler):
    """Pickles what moto keeps that plain pickle refuses: locks (fresh on load), private keys."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPE):
            return _new_lock, (False,)
        if isinstance(obj, _RLOCK_TYPE):
            return _new_lock, (True,)
        private_bytes = getattr(obj, "private_bytes", None)
        if callable(private_bytes) and type(obj).__module__.startswith("cryptography"):
            from cryptography.hazmat.primitives import serialization

            pem = private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return _load_private_key, (pem,)
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


Backends = dict[tuple[str, str, str], Any]  # (service, account, region) -> moto backend


def _live_backends() -> Backends:
    with backend_lock:
        return {
            (bd.service_name, account, region): backend
            for bd in list(BackendDict._instances)  # type: ignore[misc]
            for account, region, backend in list(bd.iter_backends())
        }


def snapshot(path: Path, extras: dict[str, Any]) -> dict[str, Any]:
    """Write every moto backend in use (and the layer's ``extras``) to ``path``, atomically.

    A backend that cannot be pickled is left out and named in the log (it will be missing after
    a restart, which the drift check then reports); the rest are still saved. The caller holds
    the layer's exclusive lock. Returns the manifest written.
    """
    backends = _live_backends()
    skipped: dict[str, str] = {}
    try:
        payload = _dumps({"backends": backends, "extras": extras})
    except Exception:
        kept: Backends = {}
        for key, backend in backends.items():
            try:
                _dumps(backend)
            except Exception as exc:
                skipped["/".join(key)] = f"{type(exc).__name__}: {exc}"
            else:
                kept[key] = backend
        payload = _dumps({"backends": kept, "extras": extras})
        for name, why in skipped.items():
            log.warning("emulator snapshot: %s could not be saved (%s); it will be lost", name, why)
    manifest = {
        **versions(),
        "saved_at": datetime.now(UTC).isoformat(),
        "backends": len(backends) - len(skipped),
        "skipped": sorted(skipped),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        out.write(json.dumps(manifest).encode() + b"\n")
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return manifest


class RestoreRefused(Exception):
    """The snapshot exists but cannot be brought back; the message says why, for a person."""


def _install(backends: Backends) -> None:
    with backend_lock:
        for (service, account, region), backend in backends.items():
            live: Any = get_backend(service)  # type: ignore[call-overload]
            dict.__setitem__(live[account], region, backend)


def restore(path: Path) -> dict[str, Any] | None:
    """Bring back the snapshot at ``path`` into moto's backends; the layer's extras, or None.

    None when there is no snapshot. Raises :class:`RestoreRefused` (after moving the file aside
    to ``…unrestorable``, so the next snapshot does not overwrite the evidence) when it was taken
    by another moto or Python, or does not load.
    """
    if not path.exists():
        return None
    try:
        with path.open("rb") as source:
            manifest = json.loads(source.readline())
            wanted = versions()
            found = {k: str(manifest.get(k)) for k in wanted}
            if found != wanted:
                raise RestoreRefused(
                    f"it was saved with moto {found['moto']} on Python {found['python']} "
                    f"(format {found['format']}); this emulator runs moto {wanted['moto']} on "
                    f"Python {wanted['python']} (format {wanted['format']})"
                )
            state = pickle.load(source)  # noqa: S301 - our own snapshot, see the module doc
        _install(state["backends"])
    except RestoreRefused:
        _set_aside(path)
        raise
    except Exception as exc:
        _set_aside(path)
        raise RestoreRefused(f"it could not be loaded ({type(exc).__name__}: {exc})") from exc
    extras: dict[str, Any] = state["extras"]
    return extras


def _set_aside(path: Path) -> None:
    path.replace(path.with_name(path.name + UNRESTORABLE_SUFFIX))


class Snapshotter:
    """Saves the emulator's state every ``interval`` seconds when something changed, and on stop.

    ``changes`` returns a counter that grows with every call that may have changed state; the
    snapshot is skipped while it has not moved.
    """

    def __init__(
        self,
        path: Path,
        take: Callable[[Path], dict[str, Any]],
        changes: Callable[[], int],
        interval: float,
    ) -> None:
        self.path, self._take, self._changes, self.interval = path, take, changes, interval
        self._saved_at_change = changes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    def save(self, force: bool = False) -> bool:
        with self._save_lock:
            current = self._changes()
            if not force and current == self._saved_at_change:
                return False
            started = time.monotonic()
            manifest = self._take(self.path)
            self._saved_at_change = current
            log.info(
                "emulator state saved to %s (%d backends, %.2f s)",
                self.path,
                manifest["backends"],
                time.monotonic() - started,
            )
            return True

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.save()
                except Exception:  # a failed periodic save must not end the emulator
                    log.exception("emulator snapshot failed; the next one is tried later")

        self._thread = threading.Thread(target=loop, name="emulator-snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic saves and take the final one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.save()
