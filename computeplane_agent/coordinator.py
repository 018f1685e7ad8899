"""The agent's reads of a coordinator's own load numbers (``/v1/cluster``, ``/v1/node``).

These are the engines' public endpoints (Trino and PrestoDB both serve them): ``/v1/cluster``
counts running and queued queries and active workers; ``/v1/node`` lists the workers. CPU and
heap come from a node entry's ``processCpuLoad`` and ``heapUsed``/``heapAvailable`` where the
engine gives them (the same fields as ``/v1/status``); a node without them counts as idle, so
an engine that does not report them is scaled on its queue alone. Only counts cross: never a
query's text or its user.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class CoordinatorLoad:
    running: int
    queued: int
    active_workers: int
    cpu: float  # mean over the workers that report it, 0..1
    memory: float  # mean heap use over the workers that report it, 0..1


def _get(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - in-VPC http
        return json.loads(response.read() or b"null")


def _fraction(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(max(float(value), 0.0), 1.0)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def parse_load(cluster: Any, nodes: Any) -> CoordinatorLoad:
    """The load from the two documents; raises ValueError when ``/v1/cluster`` is not one."""
    if not isinstance(cluster, dict):
        raise ValueError("/v1/cluster did not answer an object")
    counts = {}
    for key in ("runningQueries", "queuedQueries", "activeWorkers"):
        value = cluster.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"/v1/cluster {key} is not a count")
        counts[key] = value
    cpus: list[float] = []
    heaps: list[float] = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        if (cpu := _fraction(node.get("processCpuLoad"))) is not None:
            cpus.append(cpu)
        used, available = node.get("heapUsed"), node.get("heapAvailable")
        if isinstance(used, int | float) and isinstance(available, int | float) and available > 0:
            heaps.append(min(max(used / available, 0.0), 1.0))
    return CoordinatorLoad(
        running=counts["runningQueries"],
        queued=counts["queuedQueries"],
        active_workers=counts["activeWorkers"],
        cpu=_mean(cpus),
        memory=_mean(heaps),
    )


def read_load(base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> CoordinatorLoad | None:
    """The coordinator's load, or None when it does not answer (or answers nonsense): the
    autoscaler then decides nothing (``coordinator_unreachable``)."""
    base = base_url.rstrip("/")
    try:
        cluster = _get(f"{base}/v1/cluster", timeout)
        try:
            nodes = _get(f"{base}/v1/node", timeout)
        except (urllib.error.URLError, OSError, ValueError):
            nodes = []  # the queue alone still decides
        return parse_load(cluster, nodes)
    except (urllib.error.URLError, OSError, ValueError):
        return None
