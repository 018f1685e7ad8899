"""Autoscaling: decisions per second of the pure decision, and the agent's decision-loop cost.

Run from the repository root::

    .venv/bin/python bench/autoscaling.py [--decisions 200000] [--clusters 100] [--minutes 60]

1. ``decide`` alone: ``--decisions`` calls over a window of samples (the 10-minute scale-in
   window at one sample every 15 s, 41 samples), cycling through steady, bursty and idle loads;
   prints decisions per second and microseconds per decision.
2. The agent's loop for ``--clusters`` autoscaled clusters on one compute plane, ``--minutes``
   of simulated time at one tick every 5 s (a sample every 15 s per cluster): the autoscaler
   reads each coordinator (the in-memory target's numbers: the HTTP read is not timed), decides,
   and the agent reconciles the worker Deployments of the clusters whose count changed. Prints
   CPU per simulated minute for all clusters, coordinator reads per sample, decisions and
   target writes per decision (one Deployment per decision: nothing else is rewritten).

No control plane runs here: the reports to it are answered by a local stand-in that accepts
every decision (the control plane's side of a decision is in ``bench/clusters.py``'s resize
phase: the same operation).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from computeplane_agent.autoscale import (  # noqa: E402
    AutoscalingPolicy,
    LoadSample,
    ScalingState,
    decide,
)
from computeplane_agent.contract import ScalingAnswer, ScalingReport  # noqa: E402
from computeplane_agent.coordinator import CoordinatorLoad  # noqa: E402

SAMPLE_SECONDS = 15.0
TICK_SECONDS = 5.0


def traces(window: int) -> list[list[LoadSample]]:
    steady = [LoadSample(at=i * SAMPLE_SECONDS, reachable=True, running=3, cpu=0.5, memory=0.4,
                         active_workers=4) for i in range(window)]  # fmt: skip
    burst = [LoadSample(at=i * SAMPLE_SECONDS, reachable=True, queued=6 if i > window // 2 else 0,
                        running=4, cpu=0.9, memory=0.5, active_workers=4)
             for i in range(window)]  # fmt: skip
    idle = [LoadSample(at=i * SAMPLE_SECONDS, reachable=True, active_workers=4)
            for i in range(window)]  # fmt: skip
    return [steady, burst, idle]


def bench_decide(decisions: int) -> None:
    policy = AutoscalingPolicy(enabled=True, min_count=1, max_count=20, auto_suspend_minutes=30)
    window = int(policy.scale_in_idle_minutes * 60 / SAMPLE_SECONDS) + 1
    loads = traces(window)
    now = loads[0][-1].at
    state = ScalingState(current=4, last_change_at=None)
    actions: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(decisions):
        decision = decide(policy, loads[i % 3], state, now)
        actions[decision.reason] = actions.get(decision.reason, 0) + 1
    elapsed = time.perf_counter() - started
    print(f"decide: {decisions} decisions over {window}-sample windows in {elapsed:.2f} s")
    print(f"  {decisions / elapsed:,.0f} decisions/s, {elapsed / decisions * 1e6:.1f} µs each")
    print(f"  reasons: {dict(sorted(actions.items()))}")


class AcceptingControlPlane:
    """Answers every decision with its own count (no control plane runs in this bench)."""

    def __init__(self) -> None:
        self.decisions = 0

    def scaling(self, report: ScalingReport) -> ScalingAnswer:
        self.decisions += 1
        return ScalingAnswer(report_id=report.report_id, cluster_id=report.cluster_id,
                             accepted=True, workers=report.to_count)  # fmt: skip


def bench_loop(clusters: int, minutes: int) -> None:
    from computeplane_agent.agent import Agent
    from computeplane_agent.contract import ClusterSpec, DesiredState
    from computeplane_agent.targets.memory import MemoryTarget

    target = MemoryTarget()
    plane = AcceptingControlPlane()
    clock = [0.0]
    agent = Agent(plane, target, agent_id="agt_01hv0000000000000000000000")  # type: ignore[arg-type]
    agent.autoscaler.clock = lambda: clock[0]
    policy = {"enabled": True, "min_count": 1, "max_count": 12, "scale_in_idle_minutes": 5,
              "cooldown_seconds": 120}  # fmt: skip
    specs = [
        ClusterSpec.model_validate(
            {
                "id": f"cl_01hv{i:022d}",
                "name": f"c{i}",
                "engine": "trino",
                "version": "476",
                "state": "running",
                "coordinator": {"instance_type": "m6i.xlarge"},
                "workers": {"instance_type": "r6i.2xlarge", "replicas": 2, "max_replicas": 12},
                "node_group": f"ng-{i}",
                "autoscaling": policy,
            }
        )
        for i in range(clusters)
    ]
    desired = DesiredState(
        compute_plane_id="cp_01hv0000000000000000000000", version=1, vpc_cidr="10.42.0.0/16",
        clusters=specs,
    )  # fmt: skip
    agent.state.applied = desired
    agent.reconcile(desired)
    writes_before = target.writes
    ticks = int(minutes * 60 / TICK_SECONDS)
    started = time.process_time()
    for tick in range(ticks):
        clock[0] = tick * TICK_SECONDS
        # A day's shape, fast: each cluster is busy for 10 minutes of every 30, in turn.
        for i, spec in enumerate(specs):
            busy = ((clock[0] / 60 + i) % 30) < 10
            target.loads[spec.id] = CoordinatorLoad(
                running=4 if busy else 0, queued=6 if busy else 0, active_workers=12,
                cpu=0.9 if busy else 0.02, memory=0.5 if busy else 0.1,
            )  # fmt: skip
        agent._autoscale(desired)
    cpu = time.process_time() - started
    samples = target.load_reads
    decisions = plane.decisions
    print(f"agent loop: {clusters} clusters, {minutes} simulated minutes, {ticks} ticks")
    print(f"  CPU {cpu:.2f} s in all: {cpu / minutes * 1000:.1f} ms per simulated minute "
          f"({cpu / minutes / 60 * 100:.3f}% of one core)")  # fmt: skip
    print(f"  coordinator reads: {samples} ({samples / clusters / minutes:.1f} per cluster-minute)")
    print(f"  decisions: {decisions}; target writes per decision: "
          f"{(target.writes - writes_before) / max(decisions, 1):.2f}")  # fmt: skip
    assert math.isfinite(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    bench_decide(args.decisions)
    bench_loop(args.clusters, args.minutes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
