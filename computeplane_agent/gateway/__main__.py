"""``python -m computeplane_agent.gateway --config FILE --port P [--hmac-key-file F]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from aiohttp import web

from computeplane_agent.gateway.config import ConfigError, load_config
from computeplane_agent.gateway.server import build_app, read_key


async def serve(config_path: Path, host: str | None, port: int | None, key: bytes) -> None:
    try:
        config = load_config(config_path.read_bytes())
    except ConfigError as exc:
        raise SystemExit(f"gateway: {config_path} is invalid: {exc}") from exc
    runner = web.AppRunner(build_app(config, key, config_path), access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, host or config.listen_host, config.listen_port if port is None else port
    )
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"gateway listening on http://127.0.0.1:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m computeplane_agent.gateway")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--host")
    parser.add_argument("--hmac-key-file")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    key = read_key(args.hmac_key_file)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.config, args.host, args.port, key))


if __name__ == "__main__":
    main()
