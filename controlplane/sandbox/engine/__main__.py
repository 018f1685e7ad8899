"""``python -m controlplane.sandbox.engine serve --engine trino|presto [--port P] [--workers N]``
(and ``supervise``: one engine per cluster the local agent applied; see supervisor.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from controlplane.sandbox.engine.server import ENGINES, PAGE_ROWS, Engine, Knobs, build_app


def write_atomically(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


async def serve(args: argparse.Namespace) -> None:
    knobs = Knobs(workers=args.workers, starting=args.starting)
    engine = Engine(
        args.engine,
        version=args.version,
        knobs=knobs,
        page_rows=args.page_rows,
        cluster_id=args.cluster_id,
    )
    runner = web.AppRunner(build_app(engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://{args.host}:{port}"
    if args.address_file:
        write_atomically(
            Path(args.address_file),
            {"url": url, "pid": os.getpid(), "engine": args.engine, "cluster": args.cluster_id},
        )
    print(f"sandbox engine ({args.engine}) listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlplane.sandbox.engine")
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("serve", help="run one engine (a cluster's coordinator)")
    s.add_argument("--engine", choices=ENGINES, default="trino")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0: a free port")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--version", help="the version /v1/info reports")
    s.add_argument("--cluster-id")
    s.add_argument("--page-rows", type=int, default=PAGE_ROWS)
    s.add_argument("--starting", action="store_true", help="report starting until told otherwise")
    s.add_argument("--address-file", help="write {url, pid} here once listening")
    sup = commands.add_parser(
        "supervise", help="run an engine per cluster in a local agent's manifests directory"
    )
    sup.add_argument("--manifests", required=True, type=Path)
    sup.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    if args.command == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args))
        return 0
    from controlplane.sandbox.engine.supervisor import Supervisor

    Supervisor(args.manifests).run_forever(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
