"""Cluster health with hysteresis: pure, so the poller and the tests share one rule.

A cluster is marked down only after ``fail_threshold`` probes in a row fail, and back up only after
``success_threshold`` probes in a row succeed, so one slow answer does not empty a cluster and one
lucky answer does not re-admit a sick one. A coordinator that answers ``/v1/info`` with
``"starting": true`` is *starting*, not down: it is alive and will take queries soon (a woken
cluster passes through this state). Until the first probe a cluster is *unknown*; the first
probe decides at once, since there is no earlier state to protect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from computeplane_agent.gateway.config import Health

UP = "up"
DOWN = "down"
STARTING = "starting"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Probe:
    """One poll of a coordinator: did /v1/info and /v1/cluster answer, and what they said."""

    ok: bool
    starting: bool = False
    running: int = 0
    queued: int = 0
    error: str | None = None


@dataclass(frozen=True)
class ClusterHealth:
    state: str = UNKNOWN
    failures: int = 0
    successes: int = 0
    running: int = 0
    queued: int = 0
    last_error: str | None = None

    @property
    def load(self) -> int:
        return self.running + self.queued


def observe(current: ClusterHealth, probe: Probe, thresholds: Health) -> ClusterHealth:
    """The health after one more probe."""
    if not probe.ok:
        failures = current.failures + 1
        state = current.state
        if state == UNKNOWN or failures >= thresholds.fail_threshold:
            state = DOWN
        return replace(current, state=state, failures=failures, successes=0, last_error=probe.error)
    if probe.starting:
        # An explicit "not ready yet" from a live coordinator: no need to wait for a threshold.
        return ClusterHealth(state=STARTING, running=probe.running, queued=probe.queued)
    successes = current.successes + 1
    state = current.state
    if state == UNKNOWN or successes >= thresholds.success_threshold:
        state = UP
    return ClusterHealth(
        state=state, successes=successes, running=probe.running, queued=probe.queued
    )
