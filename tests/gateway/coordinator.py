"""A few-line Trino coordinator for the proxy tests: paged results, held queries, fail and starting.

The engine emulator is the full counterpart; this one only knows what the proxy tests look at, so
they can count exactly what reached which backend.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from computeplane_agent.gateway.server import AppThread


class Coordinator:
    def __init__(self, name: str, pages: int = 3) -> None:
        self.name = name
        self.pages = pages
        self.fail = False
        self.starting = False
        self.hold = False  # queries stay RUNNING until released
        self.submitted: list[str] = []
        self.statements: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.running: set[str] = set()
        self.cancelled: set[str] = set()
        app = web.Application(middlewares=[self._failing])
        app.router.add_post("/v1/statement", self.statement)
        app.router.add_route("*", "/v1/statement/executing/{qid}/{page}", self.page)
        app.router.add_get("/v1/info", self.info)
        app.router.add_get("/v1/cluster", self.cluster)
        self.server = AppThread(app, name=f"coordinator-{name}")

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    @web.middleware
    async def _failing(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.fail:
            return web.Response(status=500, text="failing")
        return await handler(request)

    def _results(self, qid: str, page: int) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": qid,
            "infoUri": f"{self.url}/ui/query.html?{qid}",
            "columns": [{"name": "n", "type": "bigint"}],
            "stats": {"state": "RUNNING", "queuedTimeMillis": 1, "elapsedTimeMillis": 5},
        }
        if page > 0:
            doc["data"] = [[page * 10 + i] for i in range(10)]
        if page < self.pages or (self.hold and qid in self.running):
            nxt = page + 1 if page < self.pages else page
            doc["nextUri"] = f"{self.url}/v1/statement/executing/{qid}/{nxt}"
            if page >= self.pages:
                doc.pop("data", None)
        else:
            doc["stats"]["state"] = "FINISHED"
            self.running.discard(qid)
        return doc

    async def statement(self, request: web.Request) -> web.Response:
        qid = f"{self.name}_{len(self.submitted)}"
        self.submitted.append(qid)
        self.statements.append(await request.text())
        self.headers.append(dict(request.headers))
        self.running.add(qid)
        return web.json_response(self._results(qid, 0), headers={"X-Trino-Added-Prepare": "p=1"})

    async def page(self, request: web.Request) -> web.Response:
        qid, page = request.match_info["qid"], int(request.match_info["page"])
        if request.method == "DELETE":
            self.cancelled.add(qid)
            self.running.discard(qid)
            return web.Response(status=204)
        return web.json_response(self._results(qid, page))

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"nodeVersion": {"version": "1"}, "coordinator": True, "starting": self.starting}
        )

    async def cluster(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"runningQueries": len(self.running), "queuedQueries": 0, "activeWorkers": 1}
        )
