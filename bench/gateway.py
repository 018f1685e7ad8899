"""Gateway overhead: a small query through the gateway vs straight to the backend, same run.

Run from the repository root::

    .venv/bin/python bench/gateway.py [--seconds 5] [--clients 8]

The backend is the engine emulator when it is installed, else the small coordinator of the
gateway's tests (``tests/gateway/coordinator.py``, pages=0: one POST and one GET per query). The
gateway runs in-process on its own thread. Also measures failover: after the first backend is
stopped, how many health intervals pass until a query is served by the other (0 when the dead
process refuses connections: the submit re-routes at once).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from computeplane_agent.gateway.config import parse_config
from computeplane_agent.gateway.server import start_in_thread
from tests.gateway.coordinator import Coordinator

HEADERS = {"X-Trino-User": "bench", "X-Trino-Source": "bench"}


def one_query(session: requests.Session, url: str) -> None:
    doc = session.post(f"{url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30).json()
    while "nextUri" in doc:
        doc = session.get(doc["nextUri"], headers=HEADERS, timeout=30).json()


def load(url: str, seconds: float, clients: int) -> tuple[float, float, float]:
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
    return len(latencies) / seconds, q[49] * 1000, q[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    a, b = Coordinator("a", pages=0), Coordinator("b", pages=0)
    interval = 0.5
    clusters = [
        {"id": c.name, "name": c.name, "engine": "trino", "url": c.url, "state": "running"}
        for c in (a, b)
    ]
    raw = {
        "version": "bench",
        "groups": [{"name": "g", "clusters": clusters}],
        "default_group": "g",
        "health": {"interval_seconds": interval, "fail_threshold": 3, "success_threshold": 2},
    }
    g = start_in_thread(parse_config(raw), b"bench-key-bench-key-bench")
    for url in (a.url, g.url):
        load(url, 1, args.clients)  # warm-up
    direct = load(a.url, args.seconds, args.clients)
    via = load(g.url, args.seconds, args.clients)
    print(f"direct:  {direct[0]:.0f} q/s  p50 {direct[1]:.2f} ms  p99 {direct[2]:.2f} ms")
    print(f"gateway: {via[0]:.0f} q/s  p50 {via[1]:.2f} ms  p99 {via[2]:.2f} ms")
    print(f"ratio {via[0] / direct[0]:.2f}x throughput, +{via[1] - direct[1]:.2f} ms p50")
    a.stop()
    died = time.monotonic()
    s = requests.Session()
    while True:
        doc = s.post(f"{g.url}/v1/statement", data="SELECT 1", headers=HEADERS, timeout=30).json()
        if str(doc.get("id", "")).startswith("b_"):
            break
        time.sleep(0.01)
    print(f"failover: {(time.monotonic() - died) / interval:.2f} health intervals")
    g.stop()
    b.stop()


if __name__ == "__main__":
    main()
