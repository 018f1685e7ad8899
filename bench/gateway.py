"""Gateway overhead: a small query through the gateway vs straight to the sandbox engine, same run.

Run from the repository root::

    .venv/bin/python bench/gateway.py [--seconds 5] [--clients 8]

Every part is its own process, as in a compute plane: two sandbox engines
(``python -m controlplane.sandbox.engine serve``, DuckDB behind the Trino protocol) and the
gateway (``python -m computeplane_agent.gateway``) naming them; the client threads run here. A
query is ``SELECT 1`` followed to the end (POST, then each ``nextUri``). Also printed: the
gateway's CPU time per proxied query (from /proc), and failover: after the first engine is
killed, how many health intervals pass until a query is served by the other.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {"X-Trino-User": "bench", "X-Trino-Source": "bench"}
INTERVAL = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_up(url: str) -> None:
    for _ in range(600):
        try:
            if not requests.get(f"{url}/v1/info", timeout=1).json().get("starting"):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def one_query(session: requests.Session, url: str) -> None:
    doc = session.post(f"{url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30).json()
    while "nextUri" in doc:
        doc = session.get(doc["nextUri"], headers=HEADERS, timeout=30).json()
    if doc.get("error"):
        raise RuntimeError(doc["error"])


def load(url: str, seconds: float, clients: int) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def worker() -> None:
        s = requests.Session()
        while time.monotonic() < stop:
            t = time.perf_counter()
            one_query(s, url)
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, q[49] * 1000, q[98] * 1000, len(latencies)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def completed(url: str) -> int:
    return int(requests.get(f"{url}/_lakeplane/engine", timeout=5).json()["completed"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    ports = {"a": free_port(), "b": free_port()}
    engines = {
        name: spawn(
            [
                "-m",
                "controlplane.sandbox.engine",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.clients),
            ]
        )
        for name, port in ports.items()
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    clusters = [
        {"id": n, "name": n, "engine": "trino", "url": urls[n], "state": "running"} for n in urls
    ]
    config = {
        "version": "bench",
        "groups": [{"name": "g", "clusters": clusters}],
        "default_group": "g",
        "health": {"interval_seconds": INTERVAL, "fail_threshold": 3, "success_threshold": 2},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    gport = free_port()
    gateway = spawn(
        ["-m", "computeplane_agent.gateway", "--config", f.name, "--port", str(gport)],
        env={"LAKEPLANE_GATEWAY_HMAC_KEY": "bench-key-bench-key-bench"},
    )
    gurl = f"http://127.0.0.1:{gport}"
    try:
        for url in urls.values():
            wait_up(url)
        time.sleep(2 * INTERVAL)  # the gateway has probed both
        for url in (urls["a"], gurl):
            load(url, 1, args.clients)  # warm-up
        direct = load(urls["a"], args.seconds, args.clients)
        cpu0 = cpu_seconds(gateway.pid)
        via = load(gurl, args.seconds, args.clients)
        cpu_ms = (cpu_seconds(gateway.pid) - cpu0) / via[3] * 1000
        print(f"direct:  {direct[0]:.0f} q/s  p50 {direct[1]:.2f} ms  p99 {direct[2]:.2f} ms")
        print(f"gateway: {via[0]:.0f} q/s  p50 {via[1]:.2f} ms  p99 {via[2]:.2f} ms")
        print(f"ratio {via[0] / direct[0]:.2f}x throughput, +{via[1] - direct[1]:.2f} ms p50")
        print(f"gateway CPU: {cpu_ms:.2f} ms per query ({via[3]} queries, 3 requests each)")

        before = completed(urls["b"])
        engines["a"].send_signal(signal.SIGKILL)
        engines["a"].wait()
        died = time.monotonic()
        s = requests.Session()
        for _ in range(10_000):  # bounded
            try:
                one_query(s, gurl)
            except (RuntimeError, requests.RequestException, ValueError):
                time.sleep(0.01)
                continue
            if completed(urls["b"]) > before:
                break
        print(f"failover: {(time.monotonic() - died) / INTERVAL:.2f} health intervals")
    finally:
        for p in (gateway, *engines.values()):
            p.terminate()
        for p in (gateway, *engines.values()):
            p.wait(10)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
