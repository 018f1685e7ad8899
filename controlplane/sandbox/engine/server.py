"""The sandbox engine's HTTP side: the Presto/Trino client protocol in front of ``sql.Database``.

A query is posted to ``POST /v1/statement`` and answered ``QUEUED`` with a ``nextUri`` under
``/v1/statement/queued/…``; it waits for a free worker slot (concurrency is capped by the
cluster's ready workers; with none it stays queued), runs (``RUNNING``), and its rows are paged
under ``/v1/statement/executing/…/{page}``, each page idempotent so a client may retry it, the
last without a ``nextUri`` (``FINISHED``). ``DELETE`` on either URI cancels. Failures come as the
protocol's error object. Only the engine's own header family is read and written (``X-Trino-*``
for Trino, ``X-Presto-*`` for PrestoDB), as the real coordinators do.

``/v1/info`` (with ``starting``), ``/v1/cluster`` and ``/v1/node`` answer as a coordinator.

Workers are modelled one by one (each runs one query at a time) under
``/_lakeplane/engine/worker/{n}`` — the ``uri`` ``/v1/node`` lists. ``GET``/``PUT
…/worker/{n}/v1/info/state`` is the engines' graceful shutdown: a worker put into
``SHUTTING_DOWN`` takes no new query, finishes the one it runs, then leaves (as the preStop hook
asks of a real worker). Lowering the ``workers`` knob drains the excess the same way (idle
workers first), so a scale-in never fails a query; ``DELETE …/worker/{n}`` is a worker lost
without grace (a killed pod): its query fails as on a real cluster.
``/_lakeplane/engine`` (GET, POST) is the emulator's own control: worker count, ``starting``,
``fail`` (every ``/v1`` request answers 503), ``delay_seconds`` (every ``/v1`` answer is held that
long) and ``query_seconds`` (each query stays RUNNING at least that long) — so the gateway's
health logic, drain and cancel can be tested against a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from controlplane.sandbox.engine import sql

log = logging.getLogger(__name__)

ENGINES = ("trino", "presto")
PAGE_ROWS = 4096  # rows per result page: lineitem (60,175 rows) comes in 15 pages
MAX_WAIT_SECONDS = 1.0  # how long a follow-up is held waiting for the query to move on
ABANDON_SECONDS = 300.0  # a query not followed up this long is abandoned (query.client.timeout)
RETAIN_SECONDS = 900.0  # finished queries stay answerable this long (client retries, infoUri)
MAX_QUEUED_SECONDS = 300.0  # with no worker a query waits this long, then fails
MAX_RETAINED = 1000


@dataclass
class Knobs:
    """What the sandbox (or a test) can tell the engine, through ``/_lakeplane/engine``."""

    workers: int = 1
    starting: bool = False
    fail: bool = False
    delay_seconds: float = 0.0
    query_seconds: float = 0.0
    max_queued_seconds: float = MAX_QUEUED_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "starting": self.starting,
            "fail": self.fail,
            "delay_seconds": self.delay_seconds,
            "query_seconds": self.query_seconds,
            "max_queued_seconds": self.max_queued_seconds,
        }


@dataclass
class Worker:
    index: int
    state: str = "ACTIVE"  # or SHUTTING_DOWN: takes no new query, leaves once idle
    query: Query | None = None


@dataclass
class Query:
    id: str
    slug: str
    statement: str
    user: str
    source: str | None
    session: sql.Session
    created: float = field(default_factory=time.monotonic)
    state: str = "QUEUED"
    started: float | None = None
    ended: float | None = None
    result: sql.Result | None = None
    error: sql.QueryError | None = None
    pages_served: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: bool = False  # the client has had the last page (or the error)
    worker: Worker | None = None

    @property
    def done(self) -> bool:
        return self.state in ("FINISHED", "FAILED")

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def move(self, state: str) -> None:
        self.state = state
        now = time.monotonic()
        if state == "RUNNING":
            self.started = now
        if state in ("FINISHED", "FAILED"):
            self.ended = now
        self.changed.set()
        self.changed = asyncio.Event()


class Engine:
    def __init__(
        self,
        engine: str = "trino",
        *,
        version: str | None = None,
        knobs: Knobs | None = None,
        page_rows: int = PAGE_ROWS,
        cluster_id: str | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        self.engine = engine
        self.family = "X-Trino-" if engine == "trino" else "X-Presto-"
        self.dialect = engine
        self.version = version or ("467" if engine == "trino" else "0.289")
        self.knobs = knobs or Knobs()
        self.page_rows = page_rows
        self.cluster_id = cluster_id
        self.db = sql.Database()
        self.loaded = False
        self.queries: dict[str, Query] = {}
        self.waiting: deque[Query] = deque()
        self.executing = 0
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="engine-sql")
        self.started = time.time()
        self.completed = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.workers: list[Worker] = []
        self._next_worker = 0
        self.sync_workers()

    # -- lifecycle ------------------------------------------------------------------------------

    async def load(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.pool, self.db.load)
        self.loaded = True
        self.dispatch()

    @property
    def starting(self) -> bool:
        return self.knobs.starting or not self.loaded

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- scheduling -----------------------------------------------------------------------------

    def active_workers(self) -> list[Worker]:
        return [w for w in self.workers if w.state == "ACTIVE"]

    def sync_workers(self) -> None:
        """Bring the ACTIVE workers to the ``workers`` knob: add new ones, or put the excess
        (idle ones first, then the newest) into SHUTTING_DOWN; idle shutting-down ones leave."""
        active = self.active_workers()
        for _ in range(self.knobs.workers - len(active)):
            self.workers.append(Worker(self._next_worker))
            self._next_worker += 1
        excess = len(active) - self.knobs.workers
        if excess > 0:
            for worker in sorted(active, key=lambda w: (w.query is not None, -w.index))[:excess]:
                worker.state = "SHUTTING_DOWN"
        self.workers = [w for w in self.workers if w.state == "ACTIVE" or w.query is not None]

    def shut_down(self, worker: Worker) -> None:
        """The engines' ``PUT /v1/info/state "SHUTTING_DOWN"`` on one worker: it will not be
        replaced (the knob follows), finishes its query and leaves."""
        if worker.state == "ACTIVE":
            worker.state = "SHUTTING_DOWN"
            self.knobs.workers = max(len(self.active_workers()), 0)
        self.sync_workers()

    def lose(self, worker: Worker) -> None:
        """A worker gone without grace: its query fails, as on a real cluster."""
        query = worker.query
        if worker.state == "ACTIVE":
            self.knobs.workers = max(len(self.active_workers()) - 1, 0)
        worker.state, worker.query = "SHUTTING_DOWN", None
        if query is not None and not query.done:
            self.db.interrupt(query.id)
            self._fail(query, sql.QueryError(
                f"Node {worker.index} is no longer active", *sql.GENERIC_INTERNAL_ERROR,
                kind="INTERNAL_ERROR",
            ))  # fmt: skip
        self.sync_workers()
        self.dispatch()

    def dispatch(self) -> None:
        """Start waiting queries while an ACTIVE worker is free."""
        self.sync_workers()
        while self.loaded and self.waiting:
            worker = next((w for w in self.active_workers() if w.query is None), None)
            if worker is None:
                break
            query = self.waiting.popleft()
            if query.done:
                continue
            self.executing += 1
            worker.query, query.worker = query, worker
            query.move("RUNNING")
            self._spawn(self._run(query))

    async def _run(self, query: Query) -> None:
        try:
            # query_seconds holds the query RUNNING (re-read, so lowering it lets it go).
            while not query.done and query.started is not None:
                left = self.knobs.query_seconds - (time.monotonic() - query.started)
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(query.changed.wait(), timeout=min(left, 0.05))
            if query.done:
                self.db.forget(query.id)
                return
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(
                    self.pool,
                    self.db.execute,
                    query.id,
                    query.statement,
                    query.session,
                    self.dialect,
                )
            except sql.QueryError as exc:
                if not query.done:
                    self._fail(query, exc)
                return
            except Exception as exc:
                log.exception("query %s failed inside the engine", query.id)
                self._fail(query, sql.QueryError(str(exc), *sql.GENERIC_INTERNAL_ERROR,
                                                 kind="INTERNAL_ERROR"))  # fmt: skip
                return
            if not query.done:
                query.result = result
                query.move("FINISHED")
                self.completed += 1
        finally:
            self.executing -= 1
            if query.worker is not None and query.worker.query is query:
                query.worker.query = None
            self.dispatch()

    def _fail(self, query: Query, error: sql.QueryError) -> None:
        query.error = error
        query.move("FAILED")
        self.failed += 1

    def cancel(self, query: Query) -> None:
        if query.done:
            query.delivered = True  # the client let go of the rest of the results
            return
        with contextlib.suppress(ValueError):
            self.waiting.remove(query)
        if query.state == "RUNNING":
            self.db.interrupt(query.id)
        self._fail(query, sql.user_error("Query was canceled", sql.USER_CANCELED))
        query.delivered = True

    def janitor(self) -> None:
        """Abandon unfollowed queries, fail ones queued too long, forget old finished ones."""
        now = time.monotonic()
        for query in list(self.queries.values()):
            if not query.done and query.state == "QUEUED":
                if now - query.created > self.knobs.max_queued_seconds:
                    with contextlib.suppress(ValueError):
                        self.waiting.remove(query)
                    self._fail(query, sql.QueryError(
                        f"Insufficient active worker nodes. Waited "
                        f"{self.knobs.max_queued_seconds:g}s for at least 1 workers, but only "
                        f"{self.knobs.workers} workers are active",
                        *sql.NO_NODES_AVAILABLE, kind="INSUFFICIENT_RESOURCES",
                    ))  # fmt: skip
            elif not query.delivered and now - query.last_seen > ABANDON_SECONDS:
                self.cancel(query)
                if query.error is not None:
                    query.error = sql.user_error(
                        "Query was abandoned by the client", sql.ABANDONED_QUERY
                    )
            if query.done and query.ended is not None and now - query.ended > RETAIN_SECONDS:
                del self.queries[query.id]
        while len(self.queries) > MAX_RETAINED:
            oldest = next((q for q in self.queries.values() if q.done), None)
            if oldest is None:
                break
            del self.queries[oldest.id]

    # -- counts ---------------------------------------------------------------------------------

    def running_count(self) -> int:
        """Running as the engines count it: executing, or results not yet all fetched."""
        return sum(
            1
            for q in self.queries.values()
            if q.state == "RUNNING" or (q.state == "FINISHED" and not q.delivered)
        )

    def queued_count(self) -> int:
        return sum(1 for q in self.queries.values() if q.state == "QUEUED")

    # -- documents ------------------------------------------------------------------------------

    def _stats(self, query: Query) -> dict[str, Any]:
        now = time.monotonic()
        end = query.ended or now
        queued_ms = int(((query.started or end) - query.created) * 1000)
        elapsed_ms = int((end - query.created) * 1000)
        rows = len(query.result.rows) if query.result else 0
        state = query.state
        if state == "FINISHED" and not query.delivered:
            state = "RUNNING"  # the engines report FINISHED only with the last page
        return {
            "state": state,
            "queued": state == "QUEUED",
            "scheduled": state != "QUEUED",
            "nodes": max(self.knobs.workers, 1) if state != "QUEUED" else 0,
            "totalSplits": 1 if state != "QUEUED" else 0,
            "queuedSplits": 0,
            "runningSplits": 1 if query.state == "RUNNING" else 0,
            "completedSplits": 1 if query.done else 0,
            "cpuTimeMillis": max(0, elapsed_ms - queued_ms),
            "wallTimeMillis": max(0, elapsed_ms - queued_ms),
            "queuedTimeMillis": queued_ms,
            "elapsedTimeMillis": elapsed_ms,
            "processedRows": rows,
            "processedBytes": 0,
            "physicalInputBytes": 0,
            "peakMemoryBytes": 0,
            "spilledBytes": 0,
            "progressPercentage": 100.0 if query.done else 0.0,
        }

    def document(self, base: str, query: Query, page: int | None) -> dict[str, Any]:
        """The QueryResults for ``query``; ``page`` is the executing page asked for (None: the
        queued URI)."""
        doc: dict[str, Any] = {
            "id": query.id,
            "infoUri": f"{base}/ui/query.html?{query.id}",
        }
        if query.state == "FAILED":
            assert query.error is not None
            query.delivered = True
            doc["stats"] = self._stats(query)
            doc["error"] = query.error.to_protocol()
            return doc
        if query.state == "QUEUED":
            doc["nextUri"] = f"{base}/v1/statement/queued/{query.id}/{query.slug}/{(page or 0) + 1}"
            doc["stats"] = self._stats(query)
            return doc
        if query.state == "RUNNING" or page is None:
            doc["nextUri"] = f"{base}/v1/statement/executing/{query.id}/{query.slug}/0"
            doc["partialCancelUri"] = doc["nextUri"]
            doc["stats"] = self._stats(query)
            return doc
        result = query.result
        assert result is not None
        pages = max(1, math.ceil(len(result.rows) / self.page_rows))
        page = min(page, pages - 1)
        if result.columns:
            doc["columns"] = [c.to_protocol() for c in result.columns]
            chunk = result.rows[page * self.page_rows : (page + 1) * self.page_rows]
            if chunk:
                doc["data"] = chunk
        if page + 1 < pages:
            doc["nextUri"] = f"{base}/v1/statement/executing/{query.id}/{query.slug}/{page + 1}"
        else:
            query.delivered = True
        query.pages_served = max(query.pages_served, page + 1)
        doc["stats"] = self._stats(query)
        if result.update_type is not None:
            doc["updateType"] = result.update_type
            if result.update_count is not None:
                doc["updateCount"] = result.update_count
        doc["warnings"] = []
        return doc

    def session_headers(self, query: Query) -> dict[str, str]:
        result = query.result
        if result is None or not query.delivered:
            return {}
        h: dict[str, str] = {}
        if result.set_catalog:
            h[f"{self.family}Set-Catalog"] = result.set_catalog
        if result.set_schema:
            h[f"{self.family}Set-Schema"] = result.set_schema
        if result.set_session:
            h[f"{self.family}Set-Session"] = ",".join(
                f"{k}={v}" for k, v in result.set_session.items()
            )
        if result.clear_session:
            h[f"{self.family}Clear-Session"] = ",".join(result.clear_session)
        return h


ENGINE = web.AppKey("sandbox_engine", Engine)


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _header(engine: Engine, request: web.Request, name: str) -> str | None:
    value = request.headers.get(f"{engine.family}{name}")
    return value if value else None


def _session(engine: Engine, request: web.Request) -> sql.Session:
    props: dict[str, str] = {}
    for part in (_header(engine, request, "Session") or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            props[k.strip()] = v.strip()
    catalog = _header(engine, request, "Catalog")
    schema = _header(engine, request, "Schema")
    return sql.Session(
        catalog=catalog.lower() if catalog else None,
        schema=schema.lower() if schema else None,
        properties=props,
    )


@web.middleware
async def knobs_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    engine = request.app[ENGINE]
    if request.path.startswith("/v1/"):
        if engine.knobs.delay_seconds > 0:
            await asyncio.sleep(engine.knobs.delay_seconds)
        if engine.knobs.fail:
            return web.Response(status=503, text="Service Unavailable (sandbox engine: fail)")
    response: web.StreamResponse = await handler(request)
    return response


async def statement(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    user = _header(engine, request, "User")
    if user is None:
        return web.Response(
            status=400, text=f"Error 400 Bad Request: {engine.family}User must be set"
        )
    if engine.starting:
        return web.Response(status=503, text="Server is still initializing")
    text = await request.text()
    if not text.strip():
        return web.Response(status=400, text="SQL statement is empty")
    query = Query(
        id=sql.new_query_id(),
        slug=secrets.token_hex(8),
        statement=text,
        user=user,
        source=_header(engine, request, "Source"),
        session=_session(engine, request),
    )
    engine.queries[query.id] = query
    engine.waiting.append(query)
    engine.dispatch()
    # As the engines do: the first answer is always QUEUED, whatever happened since.
    base = _base(request)
    return web.json_response({
        "id": query.id,
        "infoUri": f"{base}/ui/query.html?{query.id}",
        "nextUri": f"{base}/v1/statement/queued/{query.id}/{query.slug}/1",
        "stats": {**engine._stats(query), "state": "QUEUED", "queued": True, "scheduled": False},
    })  # fmt: skip


def _find(request: web.Request) -> Query | None:
    engine = request.app[ENGINE]
    query = engine.queries.get(request.match_info["qid"])
    if query is None or not secrets.compare_digest(query.slug, request.match_info["slug"]):
        return None
    return query


async def _wait(query: Query, until: Any) -> None:
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while not until(query):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(query.changed.wait(), timeout=left)


async def follow(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    query = _find(request)
    if query is None:
        return web.Response(status=404, text="Query not found")
    if request.method == "DELETE":
        engine.cancel(query)
        return web.Response(status=204)
    query.touch()
    token = int(request.match_info["token"])
    if request.match_info["kind"] == "queued":
        await _wait(query, lambda q: q.state != "QUEUED")
        doc = engine.document(_base(request), query, token if query.state == "QUEUED" else None)
    else:
        await _wait(query, lambda q: q.done)
        doc = engine.document(_base(request), query, token)
    return web.json_response(doc, headers=engine.session_headers(query))


async def info(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response({
        "nodeVersion": {"version": engine.version},
        "environment": "sandbox",
        "coordinator": True,
        "starting": engine.starting,
        "uptime": f"{time.time() - engine.started:.2f}s",
    })  # fmt: skip


async def cluster(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response({
        "runningQueries": engine.running_count(),
        "blockedQueries": 0,
        "queuedQueries": engine.queued_count(),
        "activeCoordinators": 1,
        "activeWorkers": len(engine.active_workers()),
        "runningDrivers": engine.executing,
        "totalAvailableProcessors": 2 * len(engine.active_workers()),
        "reservedMemory": 0.0,
        "totalInputRows": 0,
        "totalInputBytes": 0,
        "totalCpuTimeSecs": 0,
    })  # fmt: skip


async def nodes(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    # processCpuLoad and heap as /v1/status gives them per node: a worker running a query is
    # busy (CPU 0.9, heap 0.6), an idle one is not (0.02, 0.1).
    return web.json_response([
        {
            "uri": f"{_base(request)}/_lakeplane/engine/worker/{w.index}",
            "recentRequests": 0.0, "recentFailures": 0.0, "recentSuccesses": 0.0,
            "lastRequestTime": now, "lastResponseTime": now, "recentFailureRatio": 0.0,
            "age": f"{time.time() - engine.started:.2f}s",
            "state": w.state,
            "processCpuLoad": 0.9 if w.query is not None else 0.02,
            "heapUsed": 600 if w.query is not None else 100, "heapAvailable": 1000,
        }
        for w in engine.workers
    ])  # fmt: skip


def _worker(request: web.Request) -> Worker | None:
    engine = request.app[ENGINE]
    index = int(request.match_info["n"])
    return next((w for w in engine.workers if w.index == index), None)


async def worker_state(request: web.Request) -> web.Response:
    """A worker's ``/v1/info/state``: GET reads it, PUT ``"SHUTTING_DOWN"`` drains it."""
    engine = request.app[ENGINE]
    worker = _worker(request)
    if worker is None:
        return web.json_response({"error": "no such worker"}, status=404)
    if request.method == "PUT":
        try:
            wanted = await request.json()
        except ValueError:
            wanted = None
        if wanted != "SHUTTING_DOWN":
            return web.json_response({"error": 'only "SHUTTING_DOWN" can be set'}, status=400)
        engine.shut_down(worker)
    return web.json_response(worker.state)


async def worker_lost(request: web.Request) -> web.Response:
    worker = _worker(request)
    if worker is None:
        return web.json_response({"error": "no such worker"}, status=404)
    request.app[ENGINE].lose(worker)
    return web.json_response({"lost": worker.index})


async def ui(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    rows = "".join(
        f"<tr><td>{q.id}</td><td>{q.state}</td><td>{q.user}</td></tr>"
        for q in list(engine.queries.values())[-50:]
    )
    return web.Response(
        content_type="text/html",
        text=f"<html><body><h1>Lakeplane sandbox engine ({engine.engine} {engine.version})</h1>"
        f"<p>{engine.knobs.workers} workers, {engine.running_count()} running, "
        f"{engine.queued_count()} queued</p><table>{rows}</table></body></html>",
    )


_KNOB_TYPES: dict[str, Any] = {
    "workers": int, "starting": bool, "fail": bool, "delay_seconds": float,
    "query_seconds": float, "max_queued_seconds": float,
}  # fmt: skip


async def control(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    if request.method == "POST":
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"errors": {"body": "must be a JSON object"}}, status=400)
        errors = validate_knobs(body)
        if errors:
            return web.json_response({"errors": errors}, status=400)
        for key, value in body.items():
            setattr(engine.knobs, key, float(value) if _KNOB_TYPES[key] is float else value)
        engine.dispatch()
    return web.json_response({
        **engine.knobs.as_dict(),
        "engine": engine.engine,
        "cluster": engine.cluster_id,
        "loaded": engine.loaded,
        "running": engine.running_count(),
        "queued": engine.queued_count(),
        "completed": engine.completed,
        "failed": engine.failed,
    })  # fmt: skip


def validate_knobs(body: Any) -> dict[str, str]:
    if not isinstance(body, dict):
        return {"body": "must be a JSON object"}
    errors: dict[str, str] = {}
    for key, value in body.items():
        kind = _KNOB_TYPES.get(key)
        if kind is None:
            errors[key] = f"is not a setting ({', '.join(_KNOB_TYPES)})"
        elif kind is bool and not isinstance(value, bool):
            errors[key] = "must be true or false"
        elif kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors[key] = "must be a whole number >= 0"
        elif kind is float and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            errors[key] = "must be a number >= 0"
    return errors


async def _janitor(app: web.Application) -> Any:
    engine = app[ENGINE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(1.0)
            engine.janitor()

    # Loading takes a moment; meanwhile /v1/info says starting, as a coordinator coming up does.
    tasks = [asyncio.ensure_future(loop())]
    if not engine.loaded:
        tasks.append(asyncio.ensure_future(engine.load()))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    engine.pool.shutdown(wait=False, cancel_futures=True)


def build_app(engine: Engine) -> web.Application:
    app = web.Application(middlewares=[knobs_middleware])
    app[ENGINE] = engine
    app.router.add_post("/v1/statement", statement)
    app.router.add_route(
        "*", "/v1/statement/{kind:queued|executing}/{qid}/{slug}/{token:\\d+}", follow
    )
    app.router.add_get("/v1/info", info)
    app.router.add_get("/v1/cluster", cluster)
    app.router.add_get("/v1/node", nodes)
    app.router.add_get("/ui/", ui)
    app.router.add_get("/ui/query.html", ui)
    app.router.add_route("*", "/_lakeplane/engine", control)
    app.router.add_route("*", "/_lakeplane/engine/worker/{n:\\d+}/v1/info/state", worker_state)
    app.router.add_delete("/_lakeplane/engine/worker/{n:\\d+}", worker_lost)
    app.cleanup_ctx.append(_janitor)
    return app


class EngineThread:
    """An engine serving on 127.0.0.1 from a thread of this process (tests, bench)."""

    def __init__(self, engine: Engine) -> None:
        from computeplane_agent.gateway.server import AppThread

        self.engine = engine
        self._thread = AppThread(build_app(engine), name=f"sandbox-engine-{engine.engine}")

    @property
    def url(self) -> str:
        return self._thread.url

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the engine's loop (knob changes must happen there)."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._thread.loop).result(30)

    def set(self, **knobs: Any) -> None:
        errors = validate_knobs(knobs)
        if errors:
            raise ValueError(errors)

        def apply() -> None:
            for key, value in knobs.items():
                setattr(self.engine.knobs, key, value)
            self.engine.dispatch()

        self.call(apply)

    def wait_loaded(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.engine.loaded:
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox engine did not load its data")
            time.sleep(0.02)

    def stop(self) -> None:
        self._thread.stop()
