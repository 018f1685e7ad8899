"""Send queries to a cluster (or the gateway) for a while: the load the autoscaler reacts to.

    .venv/bin/python scripts/sandbox_load.py --endpoint http://127.0.0.1:PORT \\
        [--clients 8] [--seconds 120] [--hold 5] [--engine trino|presto]

``--clients`` threads each run queries back to back for ``--seconds``; with more clients than
workers, queries queue on the coordinator and the autoscaler adds workers. ``--hold`` asks the
sandbox engine to keep each query running that long (its ``query_seconds`` knob), so tiny TPC-H
queries behave like real ones; it is skipped (and harmless) against anything else. Prints one line
per ten seconds (running clients, finished and failed queries) and a verdict: exits 1 if any
query failed.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from dataclasses import dataclass, field

import requests

QUERY = "SELECT count(*) FROM tpch.tiny.lineitem"


@dataclass
class Tally:
    finished: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.finished += 1
            else:
                self.failed += 1
                self.errors.append(error)


def run_query(endpoint: str, engine: str) -> str | None:
    """One query through the client protocol; None when it finished, else why it did not."""
    family = "X-Trino-" if engine == "trino" else "X-Presto-"
    headers = {f"{family}User": "load", f"{family}Source": "sandbox-load"}
    try:
        doc = requests.post(f"{endpoint}/v1/statement", data=QUERY, headers=headers, timeout=30)
        doc.raise_for_status()
        page = doc.json()
        while "nextUri" in page:
            page = requests.get(page["nextUri"], headers=headers, timeout=30).json()
    except (requests.RequestException, ValueError) as exc:
        return str(exc)
    if page.get("error"):
        return str(page["error"].get("message"))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--engine", choices=("trino", "presto"), default="trino")
    args = parser.parse_args(argv)
    endpoint = args.endpoint.rstrip("/")
    if args.hold:
        # The sandbox engine's own knob; anything else does not have it.
        with contextlib.suppress(requests.RequestException):
            requests.post(
                f"{endpoint}/_lakeplane/engine", json={"query_seconds": args.hold}, timeout=5
            )
    tally = Tally()
    deadline = time.monotonic() + args.seconds

    def client() -> None:
        while time.monotonic() < deadline:
            tally.add(run_query(endpoint, args.engine))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    next_line = time.monotonic() + 10
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        if time.monotonic() >= next_line:
            print(f"clients {sum(t.is_alive() for t in threads)}, finished {tally.finished}, "
                  f"failed {tally.failed}", flush=True)  # fmt: skip
            next_line += 10
    print(f"done: {tally.finished} finished, {tally.failed} failed")
    for error in tally.errors[:5]:
        print(f"  {error}")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
