"""Write-behind ingestion of agent heartbeats and status reports (PostgreSQL).

Heartbeats and status reports are nearly all of the agent API's traffic. Answered one
statement per request they cost a PostgreSQL round trip each, and on the web tier's cores
that round trip (and PostgreSQL's work for it) was most of a request's cost
(bench/RESULTS.md, "Agent report ingestion"). Here a web process answers them from memory and
writes them in batches:

- **Authentication** of a credential proven in full within ``LAKEPLANE_AGENT_AUTH_CACHE_SECONDS``
  needs no query (credcache.py); otherwise the request authenticates in full first, as before.
  Anything unusual — an unknown or foreign credential, a credential due for rotation, a full
  buffer — returns False/None here and the caller takes the synchronous path unchanged.
- **Buffering**: each process keeps the newest heartbeat per compute plane and every status
  report, and a background thread flushes them every ``LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS``:
  one statement for all heartbeats, one for all status reports, then one ``status_reported``
  signal for the batch (statements.HEARTBEAT_BATCH, STATUS_BATCH). Every report is checked
  against its credential's row again in that statement, so a credential revoked after the
  answer writes nothing.
- **What an agent sees**: a heartbeat's answer is the same 200 as before (it never depended on
  the write). A status report is answered ``202 Accepted`` with the usual body: it is applied
  at most once, by the next flush; a replay is recognised then (it records and applies
  nothing) rather than answered with ``Lakeplane-Replayed`` at once.
- **What can be lost**: what a process holds when it dies (at most one flush interval of
  heartbeats and status reports; a clean shutdown flushes). Agents send a full status
  snapshot on every pass and a heartbeat every interval, so the next ones replace it.

SQLite (the embedded sandbox default) keeps the synchronous path: ``enabled()`` is False.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from computeplane_agent import contract
from controlplane.agentapi import scope, services, statements
from controlplane.agentapi.credcache import KnownCredential, credentials
from controlplane.agentapi.models import (
    AgentCredential,
    AgentPresence,
    AgentReport,
    ObservedState,
    ReportKind,
)
from controlplane.computeplanes.models import AgentStatus, ComputePlane

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of a flush ("lakeplane" in ASCII, as one 64-bit integer).
FLUSH_LOCK = int.from_bytes(b"lakeplan", "big") >> 1
# With nothing to flush for this long, the flushing thread closes its database connection.
IDLE_CLOSE_SECONDS = 2.0


def enabled() -> bool:
    return (
        float(settings.LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS) > 0
        and connection.vendor == "postgresql"
    )


@dataclass(frozen=True)
class _Received:
    credential_id: str
    digest: str
    compute_plane_id: str
    received_at: datetime


@dataclass(frozen=True)
class PendingHeartbeat(_Received):
    heartbeat: contract.Heartbeat


@dataclass(frozen=True)
class PendingStatus(_Received):
    report: contract.StatusReport
    result: dict[str, Any]


@dataclass
class FlushResult:
    heartbeats: int = 0
    heartbeats_applied: int = 0
    statuses: int = 0
    statuses_recorded: int = 0
    failed: int = 0
    applied_reports: list[tuple[str, contract.StatusReport]] = field(default_factory=list)

    @property
    def statuses_applied(self) -> int:
        return len(self.applied_reports)


# --- the two statements -----------------------------------------------------------------------
@functools.cache
def _sql(kind: str) -> str:
    """The batch statements, formatted once per process (table names never change)."""
    plane = ComputePlane._meta.db_table
    gate = statements.BATCH_GATE.format(credential=AgentCredential._meta.db_table, plane=plane)
    template = statements.HEARTBEAT_BATCH if kind == "heartbeat" else statements.STATUS_BATCH
    return template.format(
        gate=gate,
        plane=plane,
        presence=AgentPresence._meta.db_table,
        report=AgentReport._meta.db_table,
        observed=ObservedState._meta.db_table,
        refused=statements.REFUSED,
    )


def _columns(items: list[Any]) -> dict[str, list[Any]]:
    return {
        "credential": [i.credential_id for i in items],
        "digest": [i.digest for i in items],
        "plane": [i.compute_plane_id for i in items],
        "received_at": [i.received_at for i in items],
    }


def _refuse(credential_ids: list[str] | None) -> None:
    """Forget credentials the batch gate refused: their next request is authenticated in full
    (and answered 401/403) instead of being trusted from memory until the cache entry ages."""
    for credential_id in credential_ids or ():
        credentials.forget(credential_id)


def write_heartbeats(items: list[PendingHeartbeat]) -> int:
    """Apply heartbeats (at most one per compute plane) in one statement; returns how many
    were newer than the stored one and changed the plane."""
    beats = [i.heartbeat for i in items]
    params: dict[str, Any] = {
        **_columns(items),
        "sent_at": [b.sent_at for b in beats],
        "applied_version": [b.applied_version for b in beats],
        "contract_version": [b.contract_version for b in beats],
        "agent_version": [b.agent_version for b in beats],
        "agent_status": AgentStatus.CONNECTED.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_sql("heartbeat"), params)
        row = cursor.fetchone()
    if row is None:  # pragma: no cover - the statement always answers one row
        return 0
    _refuse(row[3])
    return int(row[1])


Applied = list[tuple[str, contract.StatusReport]]


def write_statuses(items: list[PendingStatus]) -> tuple[int, Applied]:
    """Record status reports and apply each plane's newest in one statement; returns how many
    were recorded (not replays) and the applied (compute plane, report) pairs."""
    from psycopg.types.json import Jsonb

    params: dict[str, Any] = {
        **_columns(items),
        "report_id": [i.report.report_id for i in items],
        "result": [Jsonb(i.result) for i in items],
        "document": [Jsonb(i.report.model_dump(mode="json")) for i in items],
        "sent_at": [i.report.sent_at for i in items],
        "position": list(range(len(items))),
        "kind": ReportKind.STATUS.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_sql("status"), params)
        row = cursor.fetchone()
    if row is None:  # pragma: no cover - the statement always answers one row
        return 0, []
    positions, recorded = row[0] or [], int(row[1])
    _refuse(row[3])
    return recorded, [(items[p].compute_plane_id, items[p].report) for p in sorted(positions)]


# --- the per-process buffer -------------------------------------------------------------------
class IngestBuffer:
    """Heartbeats (newest per compute plane) and status reports waiting for the next flush.

    ``autostart`` starts the flushing thread on first use (the web processes' buffer); tests of
    the statements use a buffer without one and call ``flush`` themselves.
    """

    def __init__(self, *, autostart: bool = True) -> None:
        self.autostart = autostart
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._heartbeats: dict[str, PendingHeartbeat] = {}
        self._statuses: list[PendingStatus] = []
        self._status_keys: set[tuple[str, str]] = set()
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def pending(self) -> int:
        return len(self._heartbeats) + len(self._statuses)

    def _room(self) -> bool:
        return self.pending() < int(settings.LAKEPLANE_AGENT_INGEST_MAX_PENDING)

    def add_heartbeat(self, item: PendingHeartbeat) -> bool:
        """Buffer a heartbeat; False when the buffer is full (the caller writes it itself)."""
        self._ensure_thread()
        with self._lock:
            current = self._heartbeats.get(item.compute_plane_id)
            if current is None:
                if not self._room():
                    return False
                self._heartbeats[item.compute_plane_id] = item
            elif current.heartbeat.sent_at < item.heartbeat.sent_at:
                self._heartbeats[item.compute_plane_id] = item
            # else: older than the buffered one, which changes nothing (as a late heartbeat)
            self._wakeup.set()
        return True

    def add_status(self, item: PendingStatus) -> bool:
        """Buffer a status report; False when the buffer is full (the caller writes it)."""
        self._ensure_thread()
        key = (item.compute_plane_id, item.report.report_id)
        with self._lock:
            if key not in self._status_keys:  # a replay within one flush is one report
                if not self._room():
                    return False
                self._status_keys.add(key)
                self._statuses.append(item)
            self._wakeup.set()
        return True

    def flush(self) -> FlushResult:
        """Write everything buffered, in this thread, with this thread's connection."""
        with self._flush_lock:
            with self._lock:
                heartbeats = sorted(self._heartbeats.values(), key=_by_plane)
                statuses = self._statuses
                self._heartbeats, self._statuses, self._status_keys = {}, [], set()
                self._wakeup.clear()
            result = FlushResult(heartbeats=len(heartbeats), statuses=len(statuses))
            if not heartbeats and not statuses:
                return result
            try:
                self._write(heartbeats, statuses, result)
            except Exception:
                log.exception(
                    "dropped %d buffered heartbeats and %d status reports",
                    len(heartbeats),
                    len(statuses),
                )
                _discard_connection()
                # Nothing of the transaction stands: only the counts of what was dropped.
                return FlushResult(
                    heartbeats=len(heartbeats),
                    statuses=len(statuses),
                    failed=len(heartbeats) + len(statuses),
                )
            return result

    @staticmethod
    def _write(
        heartbeats: list[PendingHeartbeat], statuses: list[PendingStatus], result: FlushResult
    ) -> None:
        # One flush at a time across all web processes (a transaction-scoped advisory lock):
        # two processes' batches name the same compute planes in different orders, and
        # concurrent multi-row upserts of them deadlock. A flush is a few milliseconds.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FLUSH_LOCK])
            if heartbeats:
                result.heartbeats_applied = write_heartbeats(heartbeats)
            if statuses:
                result.statuses_recorded, applied = write_statuses(statuses)
                result.applied_reports = applied
                try:
                    with transaction.atomic():  # a savepoint: the reports stay stored
                        services.announce_status_batch(applied)
                except Exception:
                    # What the listeners derive catches up with each plane's next report.
                    log.exception("status_reported listeners failed for a batch")

    # --- the flushing thread ------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if os.getpid() != self._pid:  # a forked child: start over with its own lock and thread
            self._reset()
        if not self.autostart or self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="agent-ingest", daemon=True)
                self._thread = thread
                thread.start()
                atexit.register(self.stop)

    def _run(self) -> None:
        while not self._stopping:
            if not self._wakeup.wait(timeout=IDLE_CLOSE_SECONDS):
                connections.close_all()  # this thread's connection only (they are per thread)
                continue
            # Gather one interval's worth of reports into the batch.
            time.sleep(float(settings.LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS))
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush logs its own failures
                log.exception("agent ingest flush failed")
        connections.close_all()

    def stop(self) -> FlushResult:
        """Flush what is left (process exit; tests) and let the thread end."""
        self._stopping = True
        self._wakeup.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        return self.flush()


def _by_plane(item: _Received) -> str:
    return item.compute_plane_id


def _discard_connection() -> None:
    # A failed statement may leave the connection unusable; the next flush opens a new one.
    try:
        connection.close()
    except Exception:  # pragma: no cover - closing a broken connection
        log.debug("closing a failed ingest connection", exc_info=True)


buffer = IngestBuffer()


# --- the request side -------------------------------------------------------------------------
def _known(secret: str, agent_id: str, now: datetime) -> KnownCredential | None:
    """The credential behind ``secret`` if it speaks for ``agent_id``'s plane: from the cache,
    or proven in full now (one query) and remembered. None sends the request to the
    synchronous path, which answers with the precise error."""
    presented = services.presented_credential(secret, agent_id)
    if presented is None:
        return None
    known = credentials.recall(
        presented.credential_id,
        presented.digest,
        presented.compute_plane_id,
        now=now,
        max_age_seconds=float(settings.LAKEPLANE_AGENT_AUTH_CACHE_SECONDS),
    )
    if known is not None:
        return known
    try:
        credential = services.authenticate_credential(secret, now=now)
        services.check_agent_id(credential, agent_id)
    except (services.AgentAuthError, services.ForeignComputePlane):
        return None
    return credentials.remember(
        credential_id=credential.id,
        digest=credential.digest,
        compute_plane_id=credential.compute_plane_id,
        expires_at=credential.expires_at,
        replaced=credential.replaced_by_id is not None,
    )


def accept_heartbeat(
    secret: str, heartbeat: contract.Heartbeat, *, now: datetime | None = None
) -> bool:
    """Buffer a heartbeat; False when the synchronous path must take it (see module doc)."""
    now = now or timezone.now()
    known = _known(secret, heartbeat.agent_id, now)
    if known is None or known.rotation_due(now):
        return False
    return buffer.add_heartbeat(
        PendingHeartbeat(known.credential_id, known.digest, known.compute_plane_id, now, heartbeat)
    )


def accept_status(
    secret: str, report: contract.StatusReport, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """Buffer a status report and return the answer's body; None: the synchronous path."""
    now = now or timezone.now()
    known = _known(secret, report.agent_id, now)
    if known is None:
        return None
    report, refused = scope.confine_status(known.compute_plane_id, report)
    result = services.report_result(report.report_id, now, refused)
    pending = PendingStatus(
        known.credential_id, known.digest, known.compute_plane_id, now, report, result
    )
    if not buffer.add_status(pending):
        return None
    refused.count()  # a replay within the replay window is counted again (rare)
    return result
