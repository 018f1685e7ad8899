"""The agent's local listener: what the plane's gateway sends up, relayed outbound only.

The gateway (``computeplane_agent.gateway``) never talks to the control plane itself: it posts
``{"cluster": id}`` to ``/v1/wake`` when a query is routed to a group whose clusters all sleep, and
batches of query records to ``/v1/queries``. The agent turns them into the contract's
``WakeRequest`` and ``QueryReport`` and sends them with its own credential, so the gateway needs
no credential and the plane keeps one outbound path.

- Wake: relayed at once (a client is waiting), once per cluster per ``WAKE_DEDUPE_SECONDS``: every
  query arriving at a sleeping group asks again, the control plane needs to hear it once.
- Queries: each record is validated against ``QueryRecord``; an invalid one is dropped (counted),
  and query text is removed unless the applied desired state turns it on for this plane — the
  data-separation rule is enforced here, at the last point inside the VPC. Valid records wait in
  a bounded buffer and go up in reports of at most ``MAX_QUERY_RECORDS`` every
  ``FLUSH_SECONDS``; a report that fails is resent with the same ``report_id`` (counted once).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import ValidationError

from computeplane_agent.client import ControlPlaneRefused, ControlPlaneUnavailable
from computeplane_agent.contract import (
    MAX_QUERY_RECORDS,
    GatewaySpec,
    QueryRecord,
    QueryReport,
    WakeRequest,
)

log = logging.getLogger("computeplane_agent.listener")

BUFFER = 20_000  # records waiting for the control plane (a few minutes of a busy plane)
FLUSH_SECONDS = 2.0
WAKE_DEDUPE_SECONDS = 30.0


class GatewayReports(Protocol):
    """The two agent API calls the listener makes (``HttpControlPlaneClient`` has them)."""

    def queries(self, report: QueryReport) -> None: ...

    def wake(self, request: WakeRequest) -> None: ...


class Listener:
    def __init__(
        self,
        client: GatewayReports,
        *,
        agent_id: str,
        gateway: Callable[[], GatewaySpec | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.gateway = gateway  # the applied desired state's gateway, read on every batch
        self.clock = clock
        self.buffer: deque[QueryRecord] = deque(maxlen=BUFFER)
        self.pending: QueryReport | None = None  # sent, not yet acknowledged
        self.rejected = 0
        self.dropped = 0
        self.sent = 0
        self.woken: dict[str, float] = {}
        self._flushing = threading.Lock()  # the loop's flush and a final one never interleave

    # -- handlers -------------------------------------------------------------------------------

    async def wake(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            wake = WakeRequest(agent_id=self.agent_id, cluster_id=body.get("cluster"))
        except ValidationError:
            return _problem(422, "cluster must be a cluster id")
        last = self.woken.get(wake.cluster_id)
        now = self.clock()
        if last is not None and now - last < WAKE_DEDUPE_SECONDS:
            return web.json_response({"status": "already asked"}, status=202)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.client.wake, wake)
        except ControlPlaneUnavailable as exc:
            log.warning("wake of %s not delivered: %s", wake.cluster_id, exc)
            return _problem(503, "the control plane is not reachable; the gateway asks again")
        except ControlPlaneRefused as exc:
            log.warning("the control plane refused to wake %s: %s", wake.cluster_id, exc)
            return _problem(exc.status, f"the control plane refused: {exc}")
        self.woken[wake.cluster_id] = now
        return web.json_response({"status": "asked"}, status=202)

    async def queries(self, request: web.Request) -> web.Response:
        body = await _json(request)
        raw = body.get("queries")
        if not isinstance(raw, list):
            return _problem(422, "queries must be a list of query records")
        text_allowed = self._text_allowed()
        accepted = 0
        for item in raw:
            try:
                record = QueryRecord.model_validate(item)
            except ValidationError:
                self.rejected += 1
                continue
            if record.query_text is not None and not text_allowed:
                record = record.model_copy(update={"query_text": None})
            if len(self.buffer) == self.buffer.maxlen:
                self.dropped += 1
            self.buffer.append(record)
            accepted += 1
        return web.json_response(
            {"accepted": accepted, "rejected": len(raw) - accepted}, status=202
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _text_allowed(self) -> bool:
        spec = self.gateway()
        return bool(spec is not None and spec.query_text)

    # -- delivery -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send what is buffered, report by report, until it is sent or the control plane fails
        (blocking: runs in an executor thread)."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        while self.pending is not None or self.buffer:
            if self.pending is None:
                batch = [
                    self.buffer.popleft() for _ in range(min(MAX_QUERY_RECORDS, len(self.buffer)))
                ]
                if not self._text_allowed():  # turned off since they arrived
                    batch = [r.model_copy(update={"query_text": None}) for r in batch]
                self.pending = QueryReport(
                    agent_id=self.agent_id, report_id=uuid.uuid4().hex, queries=batch
                )
            try:
                self.client.queries(self.pending)
            except ControlPlaneUnavailable as exc:
                log.warning("query records not delivered, kept for the next try: %s", exc)
                return
            except ControlPlaneRefused as exc:
                # The same report would be refused again: drop it, say so, go on.
                log.error("the control plane refused %d query records: %s",
                          len(self.pending.queries), exc)  # fmt: skip
                self.dropped += len(self.pending.queries)
                self.pending = None
                continue
            self.sent += len(self.pending.queries)
            self.pending = None

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await loop.run_in_executor(None, self.flush)
            except Exception:  # the loop must outlive one bad batch
                log.exception("query record flush failed")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/wake", self.wake)
        app.router.add_post("/v1/queries", self.queries)
        app.router.add_get("/v1/healthz", self.healthz)

        async def lifecycle(app: web.Application) -> Any:
            task = asyncio.create_task(self._flush_loop())
            yield
            task.cancel()
            await asyncio.get_running_loop().run_in_executor(None, self.flush)

        app.cleanup_ctx.append(lifecycle)
        return app


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": "Refused", "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )
