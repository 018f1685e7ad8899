"""Render time of the agent: one 100-worker cluster, and a 100-cluster desired state.

    .venv/bin/python bench/render.py [--runs 50] [--clusters 100] [--workers 100]

Pure CPU, no services. For each engine it times ``render_cluster`` on a cluster with
``--workers`` workers; then ``render_desired_state`` on a compute plane with ``--clusters``
clusters (engines alternating, ``--workers`` each), parsing that desired state from its JSON
wire form (what the agent does with each long-poll answer), the content hashing a reconcile pass
does per object, and the agent's steady-state pass on it: ``Agent.reconcile`` against the in-
memory target when nothing changed (render, hash, compare, zero writes). Each figure is the
median (and p90) of ``--runs`` timed runs after one warm-up, wall time with
``time.perf_counter`` in this single thread.

The worker count changes only the replicas and the memory arithmetic, not the number of objects,
so the 100-worker figure is the per-cluster figure at any size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from computeplane_agent.agent import Agent
from computeplane_agent.contract import CatalogSpec, ClusterSpec, DesiredState
from computeplane_agent.render import render_cluster, render_desired_state
from computeplane_agent.targets.base import content_hash, with_applied_hash
from computeplane_agent.targets.memory import MemoryTarget

VPC_CIDR = "10.42.0.0/16"
ENGINE_VERSIONS = {"presto": "0.292", "trino": "476"}
HIVE = CatalogSpec.model_validate(
    {
        "id": "cat_01hv0000000000000000000001",
        "name": "hive",
        "connector": "hive",
        "version": 1,
        "metastore": {"kind": "thrift", "uris": "thrift://metastore:9083"},
    }
)


def cluster(index: int, engine: str, workers: int) -> ClusterSpec:
    cluster_id = f"cl_01hv{index:022d}"
    return ClusterSpec.model_validate(
        {
            "id": cluster_id,
            "name": f"bench-{index}",
            "engine": engine,
            "version": ENGINE_VERSIONS[engine],
            "state": "running",
            "coordinator": {"instance_type": "m6i.2xlarge"},
            "workers": {
                "instance_type": "r6i.4xlarge",
                "replicas": workers,
                "spot": index % 2 == 1,
                "max_replicas": max(workers, 200),
            },
            "node_group": "lp-" + cluster_id.replace("_", "-"),
            "catalogs": [HIVE.id],
        }
    )


def timed(runs: int, call: Callable[[], Any]) -> tuple[float, float, Any]:
    """(median ms, p90 ms, last result) over ``runs`` runs after one warm-up."""
    result = call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return statistics.median(samples), p90, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--workers", type=int, default=100)
    args = parser.parse_args()

    rows: list[tuple[str, int, float, float]] = []
    for engine in ENGINE_VERSIONS:
        spec = cluster(0 if engine == "presto" else 1, engine, args.workers)
        median, p90, objects = timed(
            args.runs, lambda spec=spec: render_cluster(spec, vpc_cidr=VPC_CIDR, catalogs=[HIVE])
        )
        what = f"render_cluster, {engine}, {args.workers} workers"
        rows.append((what, len(objects), median, p90))

    engines = list(ENGINE_VERSIONS)
    state = DesiredState(
        compute_plane_id="cp_01hv0000000000000000000000",
        version=1,
        vpc_cidr=VPC_CIDR,
        clusters=[cluster(i, engines[i % 2], args.workers) for i in range(args.clusters)],
        catalogs=[HIVE],
    )
    median, p90, objects = timed(args.runs, lambda: render_desired_state(state))
    rows.append((f"render_desired_state, {args.clusters} clusters", len(objects), median, p90))

    wire = state.model_dump_json()
    median, p90, _ = timed(args.runs, lambda: DesiredState.model_validate_json(wire))
    rows.append((f"parse desired state JSON ({len(wire) // 1024} KiB)", 0, median, p90))

    # The part of a reconcile pass that is not rendering: stamping and comparing content hashes.
    median, p90, _ = timed(args.runs, lambda: [content_hash(with_applied_hash(o)) for o in objects])
    rows.append((f"hash the {len(objects)} objects (stamp + compare)", len(objects), median, p90))

    target = MemoryTarget()
    # The client is never called by reconcile(); the pass only renders, hashes and compares.
    agent = Agent(client=None, target=target, agent_id="ag_bench")  # type: ignore[arg-type]
    first = agent.reconcile(state)
    writes = target.writes
    median, p90, result = timed(args.runs, lambda: agent.reconcile(state))
    if target.writes != writes or result.applied or result.pruned:
        print("an unchanged desired state caused writes", file=sys.stderr)
        return 1
    rows.append(
        (f"Agent.reconcile unchanged, {args.clusters} clusters", first.applied, median, p90)
    )

    print(f"runs per figure: {args.runs} (after one warm-up); wall time, one thread")
    print(f"{'what':<52} {'objects':>7} {'median ms':>10} {'p90 ms':>8}")
    for what, count, med, p in rows:
        print(f"{what:<52} {count or '':>7} {med:>10.2f} {p:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
