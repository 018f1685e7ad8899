"""The gateway's HTTP server: proxy, health poller, wake, drain, records and config reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from computeplane_agent.gateway import protocol, uris
from computeplane_agent.gateway.config import ConfigError, GatewayConfig, load_config
from computeplane_agent.gateway.health import DOWN, UP, ClusterHealth, Probe, observe
from computeplane_agent.gateway.records import FLUSH_SECONDS, QueryRecorder
from computeplane_agent.gateway.routing import route

log = logging.getLogger(__name__)

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length", "content-encoding",
}  # fmt: skip
URI_FIELDS = ("nextUri", "infoUri", "partialCancelUri")
IDLE_SECONDS = 120.0  # a query not followed up for this long no longer counts as in flight here
WAKE_WAIT_STEP = 0.25  # first hold of a woken query's poll; doubles up to WAKE_WAIT_MAX
WAKE_WAIT_MAX = 2.0
_UNREACHABLE = "GATEWAY_BACKEND_UNREACHABLE"
SHORT_TEXT = 256  # the contract's bound on user, source and error name
MAX_QUERY_TEXT = 64 * 1024  # the contract's bound on a recorded query text
MAX_URI_BYTES = 4 * 1024 * 1024  # a 1 MiB statement compresses and base64-encodes well below


@dataclass
class InFlight:
    cluster: str
    last_seen: float


@dataclass
class GatewayState:
    config: GatewayConfig
    key: bytes
    config_path: Path | None = None
    config_mtime: float = 0.0
    health: dict[str, ClusterHealth] = field(default_factory=dict)
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    recorder: QueryRecorder = field(default_factory=QueryRecorder)
    session: aiohttp.ClientSession | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def in_flight_counts(self) -> dict[str, int]:
        now = time.monotonic()
        for qid in [q for q, f in self.in_flight.items() if now - f.last_seen > IDLE_SECONDS]:
            del self.in_flight[qid]
        counts: dict[str, int] = {}
        for f in self.in_flight.values():
            counts[f.cluster] = counts.get(f.cluster, 0) + 1
        return counts


STATE = web.AppKey("gateway_state", GatewayState)


def _base(request: web.Request) -> str:
    proto = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.host)
    return f"{proto}://{host}"


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _forward_headers(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _error(
    request: web.Request, message: str, name: str, status: int = 200, query_id: str | None = None
) -> web.Response:
    qid = query_id or f"gw_{uuid.uuid4().hex[:16]}"
    return _json(protocol.failed(qid, f"{_base(request)}/ui/", message, name), status=status)


class Proxy:
    def __init__(self, state: GatewayState) -> None:
        self.state = state

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self.state.session is not None
        return self.state.session

    # -- the query path ----------------------------------------------------------------------

    async def statement(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        body = await request.read()
        config = state.config
        facts = protocol.facts_from(_lower(request.headers))
        health = dict(state.health)
        while True:
            decision = route(config, facts, health, state.in_flight_counts())
            if decision.cluster_id is None:
                break
            try:
                return await self._submit(
                    request, body, decision.cluster_id, decision.group or "", time.time()
                )
            except aiohttp.ClientConnectorError as exc:
                # Not even connected, so no query exists there: try the next choice at once
                # rather than wait for the poller to notice.
                health[decision.cluster_id] = ClusterHealth(state=DOWN, last_error=str(exc))
        if decision.wake is not None:
            await self._ask_wake(decision.wake)
            token = uris.sign(state.key, {
                "k": "w", "w": decision.wake, "g": decision.group, "t": time.time(), "n": 0,
                "s": body.decode("utf-8", "replace"), "id": f"gw_{uuid.uuid4().hex[:16]}",
            })  # fmt: skip
            return self._queued(request, token, 0)
        return _error(request, " ".join(decision.reasons), "NO_CLUSTER_AVAILABLE")

    def _queued(self, request: web.Request, token: str, elapsed_ms: int) -> web.Response:
        payload = uris.verify(self.state.key, token)
        uri = f"{_base(request)}{uris.PREFIX}{token}"
        return _json(protocol.queued(payload["id"], f"{_base(request)}/ui/", uri, elapsed_ms))

    async def _ask_wake(self, cluster_id: str) -> None:
        agent = self.state.config.agent_url
        if not agent:
            return
        try:
            async with self.session.post(f"{agent}/v1/wake", json={"cluster": cluster_id}) as resp:
                if resp.status >= 300:
                    log.warning(
                        "agent refused to wake %s: %s %s",
                        cluster_id,
                        resp.status,
                        await resp.text(),
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("agent not reachable to wake %s: %s", cluster_id, exc)

    async def _submit(
        self, request: web.Request, body: bytes, cluster_id: str, group: str, started: float
    ) -> web.StreamResponse:
        cluster = self.state.config.cluster(cluster_id)
        assert cluster is not None
        ctx = {"c": cluster_id, "g": group, "t": started, "bi": len(body), "bo": 0}
        if self.state.config.query_text:
            ctx["x"] = body.decode("utf-8", "replace")[:MAX_QUERY_TEXT]
        return await self._forward(request, "POST", f"{cluster.url}/v1/statement", body, ctx)

    async def follow(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = uris.verify(self.state.key, request.match_info["token"])
        except uris.TamperedToken as exc:
            return _error(request, f"Refused: {exc}.", "GATEWAY_URI_INVALID", status=400)
        if payload.get("k") == "w":
            return await self._wake_wait(request, payload)
        body = await request.read()
        payload["bi"] = payload.get("bi", 0) + len(body)
        return await self._forward(request, request.method, payload["u"], body, payload)

    async def _wake_wait(self, request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
        state = self.state
        ctx = {"c": None, "g": payload["g"], "t": payload["t"], "bi": len(payload["s"])}
        if request.method == "DELETE":
            self._record(request, ctx, payload["id"], "CANCELED", "USER_CANCELED", {})
            return web.Response(status=204)
        cluster_id = payload["w"]
        hold = min(WAKE_WAIT_STEP * 2 ** payload["n"], WAKE_WAIT_MAX)
        deadline = payload["t"] + state.config.wake.max_wait_seconds
        give_up = min(time.time() + hold, deadline)
        while True:
            decision = route(
                state.config,
                protocol.facts_from(_lower(request.headers)),
                state.health,
                state.in_flight_counts(),
            )
            target = decision.cluster_id
            if (
                target is None
                and decision.wake
                and state.health.get(decision.wake, ClusterHealth()).state == UP
            ):
                target = decision.wake  # the agent's config may lag behind the cluster coming up
            if target is None and state.health.get(cluster_id, ClusterHealth()).state == UP:
                target = cluster_id
            if target is not None and state.config.cluster(target) is not None:
                return await self._submit(
                    request,
                    payload["s"].encode(),
                    target,
                    decision.group or payload["g"],
                    payload["t"],
                )
            if time.time() >= give_up:
                break
            await asyncio.sleep(min(0.05, max(0.0, give_up - time.time())))
        elapsed_ms = int((time.time() - payload["t"]) * 1000)
        if time.time() >= deadline:
            cluster = state.config.cluster(cluster_id)
            h = state.health.get(cluster_id, ClusterHealth())
            why = f"its coordinator is {h.state}" + (f" ({h.last_error})" if h.last_error else "")
            name = cluster.name if cluster else cluster_id
            self._record(request, {**ctx, "c": cluster_id}, payload["id"], "FAILED",
                         "CLUSTER_WAKE_TIMEOUT", {})  # fmt: skip
            return _error(
                request,
                f"Cluster {name} ({cluster_id}) did not come up within "
                f"{state.config.wake.max_wait_seconds:g} s: {why}.",
                "CLUSTER_WAKE_TIMEOUT",
                query_id=payload["id"],
            )
        token = uris.sign(state.key, {**payload, "n": payload["n"] + 1})
        return self._queued(request, token, elapsed_ms)

    async def _forward(
        self, request: web.Request, method: str, url: str, body: bytes, ctx: dict[str, Any]
    ) -> web.StreamResponse:
        state = self.state
        try:
            async with self.session.request(
                method, url, data=body or None, headers=_forward_headers(request)
            ) as resp:
                raw = await resp.read()
                headers = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP}
                status = resp.status
                is_json = resp.content_type == "application/json"
        except aiohttp.ClientConnectorError:
            if method == "POST" and url.endswith("/v1/statement"):
                raise
            return _error(request, f"Cluster {ctx['c']} could not be reached.", _UNREACHABLE, 502)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _error(
                request,
                f"Cluster {ctx['c']} could not be reached: {exc}.",
                _UNREACHABLE,
                502,
            )
        if method == "DELETE":
            # A cancel answers 204 with no body: what ends the query here is the request itself,
            # so the query id comes from the signed token, not from the answer. A partial cancel
            # (one stage) leaves the query running.
            qid = ctx.get("q")
            if isinstance(qid, str) and not ctx.get("p") and status < 300:
                state.in_flight.pop(qid, None)
                self._record(request, ctx, qid, "CANCELED", "USER_CANCELED", {})
            return web.Response(body=raw, status=status, headers=headers)
        if not is_json or status != 200:
            return web.Response(body=raw, status=status, headers=headers)
        try:
            doc = json.loads(raw)
        except ValueError:
            return web.Response(body=raw, status=status, headers=headers)
        if not isinstance(doc, dict):
            return web.Response(body=raw, status=status, headers=headers)
        qid = doc.get("id")
        base = _base(request)
        ctx = {**ctx, "bo": ctx.get("bo", 0) + len(raw)}
        if isinstance(qid, str):
            ctx["q"] = qid
        for f in URI_FIELDS:
            if isinstance(doc.get(f), str):
                signed = {**ctx, "u": doc[f], **({"p": 1} if f == "partialCancelUri" else {})}
                doc[f] = f"{base}{uris.PREFIX}{uris.sign(state.key, signed)}"
        out = json.dumps(doc, separators=(",", ":")).encode()
        if isinstance(qid, str):
            if "nextUri" in doc:
                state.in_flight[qid] = InFlight(ctx["c"], time.monotonic())
            else:
                state.in_flight.pop(qid, None)
                error = doc.get("error") or {}
                name = error.get("errorName") if isinstance(error, dict) else None
                # Trino and Presto report a cancelled query as FAILED with USER_CANCELED.
                end = "FINISHED" if not error else "FAILED"
                if name == "USER_CANCELED":
                    end = "CANCELED"
                self._record(request, ctx, qid, end, name, doc.get("stats") or {})
        return web.Response(
            body=out, status=status, headers={**headers, "Content-Type": "application/json"}
        )

    def _record(
        self,
        request: web.Request,
        ctx: dict[str, Any],
        query_id: str,
        end: str,
        error_name: Any,
        stats: dict[str, Any],
    ) -> None:
        """One QueryRecord of the agent contract (the gateway does not import the contract: the
        agent validates each record before it leaves the VPC; the tests validate them here)."""
        h = _lower(request.headers)
        now = time.time()
        started = float(ctx.get("t", now))
        self.state.recorder.add({
            "query_id": query_id[:128],
            "cluster_id": ctx.get("c") or None,
            "routing_group": ctx.get("g") or None,
            "user": _short(protocol.header(h, "user")),
            "source": _short(protocol.header(h, "source")),
            "state": end,
            "error_name": _short(error_name if isinstance(error_name, str) else None),
            "queued_ms": _millis(stats.get("queuedTimeMillis"), 0),
            "elapsed_ms": _millis(stats.get("elapsedTimeMillis"), int((now - started) * 1000)),
            "bytes_in": int(ctx.get("bi", 0)),
            "bytes_out": int(ctx.get("bo", 0)),
            "started_at": _iso(started),
            "finished_at": _iso(now),
            **({"query_text": ctx.get("x")} if self.state.config.query_text else {}),
        })  # fmt: skip

    # -- the rest of the surface ---------------------------------------------------------------

    async def info(self, request: web.Request) -> web.Response:
        up = [cid for cid, h in self.state.health.items() if h.state == UP]
        return _json({
            "nodeVersion": {"version": "lakeplane-gateway"},
            "environment": "lakeplane",
            "coordinator": True,
            "starting": not up,
            "uptime": f"{time.time() - self.state.started:.0f}s",
        })  # fmt: skip

    async def ui(self, request: web.Request) -> web.StreamResponse:
        decision = route(
            self.state.config, protocol.facts_from(_lower(request.headers)), self.state.health
        )
        cluster = self.state.config.cluster(decision.cluster_id) if decision.cluster_id else None
        if cluster is None:
            return _error(request, " ".join(decision.reasons), "NO_CLUSTER_AVAILABLE", 503)
        raise web.HTTPFound(f"{cluster.url}/ui/")

    async def status(self, request: web.Request) -> web.Response:
        counts = self.state.in_flight_counts()
        clusters = {}
        for cid, c in self.state.config.clusters().items():
            h = self.state.health.get(cid, ClusterHealth())
            draining = c.state == "draining"
            n = counts.get(cid, 0)
            # Empty: nothing in flight here and nothing on the coordinator, or a coordinator that
            # is gone (nothing on it can finish; a drain must not wait for it forever).
            empty = n == 0 and ((h.state == UP and h.load == 0) or h.state == DOWN)
            clusters[cid] = {
                "health": h.state, "running": h.running, "queued": h.queued, "in_flight": n,
                "draining": draining, "drained": draining and empty,
            }  # fmt: skip
        return _json({"config_version": self.state.config.version, "clusters": clusters})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


def _short(value: str | None) -> str | None:
    """Header values in a record are bounded like every field the control plane stores."""
    return value[:SHORT_TEXT] if value else None


def _millis(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return max(0, default)
    return max(0, int(value))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


# -- background loops ----------------------------------------------------------------------------


async def probe(session: aiohttp.ClientSession, url: str, timeout: float) -> Probe:
    t = aiohttp.ClientTimeout(total=timeout)
    try:
        async with session.get(f"{url}/v1/info", timeout=t) as resp:
            if resp.status != 200:
                return Probe(ok=False, error=f"/v1/info answered {resp.status}")
            info = await resp.json()
        async with session.get(f"{url}/v1/cluster", timeout=t) as resp:
            if resp.status != 200:
                return Probe(ok=False, error=f"/v1/cluster answered {resp.status}")
            stats = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Probe(ok=False, error=str(exc) or type(exc).__name__)
    return Probe(
        ok=True,
        starting=bool(info.get("starting")),
        running=int(stats.get("runningQueries", 0)),
        queued=int(stats.get("queuedQueries", 0)),
    )


async def poll_once(state: GatewayState) -> None:
    assert state.session is not None
    config = state.config
    clusters = config.clusters()
    probes = await asyncio.gather(
        *(probe(state.session, c.url, config.health.timeout_seconds) for c in clusters.values())
    )
    fresh = {}
    for cid, p in zip(clusters, probes, strict=True):
        fresh[cid] = observe(state.health.get(cid, ClusterHealth()), p, config.health)
    state.health = fresh  # clusters gone from the config are forgotten


async def _health_loop(state: GatewayState) -> None:
    while True:
        try:
            await poll_once(state)
        except Exception:  # the poller must outlive any one bad answer
            log.exception("health poll failed")
        await asyncio.sleep(state.config.health.interval_seconds)


def reload_config(state: GatewayState) -> bool:
    """Apply the config file if it changed; an invalid one is refused and the running one kept."""
    if state.config_path is None:
        return False
    try:
        mtime = state.config_path.stat().st_mtime
        if mtime == state.config_mtime:
            return False
        state.config_mtime = mtime
        state.config = load_config(state.config_path.read_bytes())
    except (OSError, ConfigError) as exc:
        log.error(
            "gateway config %s refused, keeping version %s: %s",
            state.config_path,
            state.config.version,
            exc,
        )
        return False
    log.info("gateway config version %s applied", state.config.version)
    return True


async def _config_loop(state: GatewayState) -> None:
    while True:
        await asyncio.sleep(0.5)
        reload_config(state)


async def _records_loop(state: GatewayState) -> None:
    assert state.session is not None
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        await state.recorder.flush(state.session, state.config.agent_url)


def build_app(
    config: GatewayConfig, key: bytes, config_path: Path | None = None
) -> web.Application:
    state = GatewayState(config=config, key=key, config_path=config_path)
    if config_path is not None:
        state.config_mtime = config_path.stat().st_mtime
    proxy = Proxy(state)
    app = web.Application(
        client_max_size=64 * 1024 * 1024,
        # A woken query's statement (and, when turned on, a query's text) rides in its signed
        # follow-up URI: allow request lines far beyond aiohttp's 8 KiB default.
        handler_args={"max_line_size": MAX_URI_BYTES},
    )
    app[STATE] = state
    app.router.add_post("/v1/statement", proxy.statement)
    app.router.add_route("*", uris.PREFIX + "{token}", proxy.follow)
    app.router.add_get("/v1/info", proxy.info)
    app.router.add_get("/ui", proxy.ui)
    app.router.add_get("/ui/{tail:.*}", proxy.ui)
    app.router.add_get("/_lakeplane/v1/status", proxy.status)
    app.router.add_get("/_lakeplane/v1/healthz", proxy.healthz)

    async def lifecycle(app: web.Application) -> Any:
        state.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, connect=5),
        )
        await poll_once(state)
        state.tasks = [
            asyncio.create_task(f(state)) for f in (_health_loop, _config_loop, _records_loop)
        ]
        yield
        for t in state.tasks:
            t.cancel()
        for t in state.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await state.recorder.flush(state.session, state.config.agent_url)
        await state.session.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def read_key(key_file: str | None) -> bytes:
    if key_file:
        key = Path(key_file).read_bytes().strip()
    else:
        key = os.environ.get("LAKEPLANE_GATEWAY_HMAC_KEY", "").encode()
    if len(key) < 16:
        raise SystemExit(
            "gateway: an HMAC key of at least 16 bytes is required "
            "(LAKEPLANE_GATEWAY_HMAC_KEY or --hmac-key-file)"
        )
    return key


class AppThread:
    """An aiohttp app serving on 127.0.0.1 from a thread of its own (tests, bench, in-process)."""

    def __init__(
        self,
        app: web.Application,
        name: str = "lakeplane-gateway",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        import threading

        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            runner = web.AppRunner(self.app, access_log=None)
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(runner.cleanup())
            self.loop.close()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()
        ready.wait(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)


class GatewayThread(AppThread):
    def __init__(self, config: GatewayConfig, key: bytes, config_path: Path | None = None) -> None:
        super().__init__(build_app(config, key, config_path))

    @property
    def state(self) -> GatewayState:
        return self.app[STATE]

    def poll_health(self) -> None:
        """One health round now (tests step the poller instead of waiting for its interval)."""
        asyncio.run_coroutine_threadsafe(poll_once(self.state), self.loop).result(30)


def start_in_thread(
    config: GatewayConfig, key: bytes, config_path: Path | None = None
) -> GatewayThread:
    return GatewayThread(config, key, config_path)
