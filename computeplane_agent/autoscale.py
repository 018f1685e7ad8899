"""The autoscaling decision: a pure function from load samples to a desired worker count.

The agent samples the coordinator (``/v1/cluster``: queued and running queries, active workers;
``/v1/node``: CPU and heap per node) every interval, keeps a short history and calls
:func:`decide`. Nothing here does I/O or reads a clock, so every rule is a table-driven test:
the agent passes ``now`` and applies the answer; the control plane records it as a scaling event
and resizes the node group to match. See ``docs/autoscaling.md`` for the rules and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Action = Literal["none", "scale_out", "scale_in", "suspend"]

# Scale in only when load is below this fraction of the scale-out target: a band between the two
# thresholds keeps samples that wobble around the target from growing and shrinking in turn.
SCALE_IN_FRACTION = 0.5


@dataclass(frozen=True)
class AutoscalingPolicy:
    enabled: bool
    min_count: int
    max_count: int
    # Queued queries above this count as pressure (0: any queued query is pressure).
    target_queued: int = 0
    # Cluster CPU and memory utilisation (0..1) above these count as pressure.
    target_cpu: float = 0.8
    target_memory: float = 0.8
    # Pressure must hold for this long before workers are added.
    scale_out_window_seconds: int = 60
    # Load must stay low for this long before workers are removed.
    scale_in_idle_minutes: int = 10
    scale_out_step: int = 2
    scale_in_step: int = 1
    # No further change (in either direction) this soon after the last one.
    cooldown_seconds: int = 300
    # With no queries at all for this long the cluster is suspended (None: never).
    auto_suspend_minutes: int | None = None
    # A running query that a worker can absorb: queued work beyond the step asks for more.
    queries_per_worker: int = 4


@dataclass(frozen=True)
class LoadSample:
    at: float  # seconds (the agent's clock)
    reachable: bool  # the coordinator answered /v1/cluster
    queued: int = 0
    running: int = 0
    active_workers: int = 0
    cpu: float = 0.0  # mean worker CPU utilisation, 0..1
    memory: float = 0.0  # mean worker heap utilisation, 0..1


@dataclass(frozen=True)
class ScalingState:
    current: int  # the worker count asked for now (the Deployment's replicas)
    last_change_at: float | None = None
    suspended: bool = False
    # The most workers this cluster may have under the organisation's quota (None: no quota).
    quota: int | None = None
    # A schedule window in force asks for at least this many workers.
    schedule_floor: int = 0


@dataclass(frozen=True)
class ScalingDecision:
    desired: int
    action: Action
    reason: str  # a stable code: docs/autoscaling.md lists them
    detail: str

    @property
    def changes(self) -> bool:
        return self.action != "none"


def bounds(policy: AutoscalingPolicy, state: ScalingState) -> tuple[int, int]:
    """The allowed worker range: the schedule raises the floor, the quota caps the ceiling."""
    high = policy.max_count if state.quota is None else min(policy.max_count, state.quota)
    low = min(max(policy.min_count, state.schedule_floor), high)
    return low, high


def _window(samples: Sequence[LoadSample], now: float, seconds: float) -> list[LoadSample] | None:
    """The samples of the last ``seconds``, or None when the history does not cover them yet."""
    if not samples or samples[0].at > now - seconds:
        return None
    return [s for s in samples if s.at >= now - seconds] or None


def _pressure(policy: AutoscalingPolicy, s: LoadSample) -> bool:
    return (
        s.queued > policy.target_queued
        or s.cpu > policy.target_cpu
        or s.memory > policy.target_memory
    )


def _underused(policy: AutoscalingPolicy, s: LoadSample) -> bool:
    return (
        s.queued == 0
        and s.cpu < policy.target_cpu * SCALE_IN_FRACTION
        and s.memory < policy.target_memory * SCALE_IN_FRACTION
    )


def _hold(state: ScalingState, reason: str, detail: str) -> ScalingDecision:
    return ScalingDecision(state.current, "none", reason, detail)


def _idle_suspend(
    policy: AutoscalingPolicy,
    samples: Sequence[LoadSample],
    state: ScalingState,
    now: float,
    in_cooldown: bool,
) -> ScalingDecision | None:
    """Suspend (or hold for the cooldown) after ``auto_suspend_minutes`` without a query."""
    if policy.auto_suspend_minutes is None or state.schedule_floor > 0:
        return None
    quiet = _window(samples, now, policy.auto_suspend_minutes * 60)
    if not quiet or not all(s.reachable and s.queued == 0 and s.running == 0 for s in quiet):
        return None
    if in_cooldown:
        return _hold(state, "cooldown", "idle, within the cooldown")
    return ScalingDecision(
        0, "suspend", "idle_suspend", f"no queries for {policy.auto_suspend_minutes} minutes"
    )


def decide(
    policy: AutoscalingPolicy,
    samples: Sequence[LoadSample],
    state: ScalingState,
    now: float,
) -> ScalingDecision:
    """The worker count the cluster should have now, and why.

    ``samples`` are in time order, oldest first, and may reach back further than any window.
    """
    if state.suspended:
        return _hold(state, "suspended", "the cluster is suspended; a query wakes it")
    in_cooldown = (
        state.last_change_at is not None and now - state.last_change_at < policy.cooldown_seconds
    )
    if not policy.enabled:
        # Auto-suspend is its own setting: it acts on a cluster whose size the user keeps.
        suspend = _idle_suspend(policy, samples, state, now, in_cooldown)
        return suspend or _hold(state, "disabled", "autoscaling is off for this cluster")
    low, high = bounds(policy, state)
    if state.current < low:
        # The floor is configuration, not load: raise to it even when the coordinator is silent.
        why = "schedule" if state.schedule_floor > policy.min_count else "below_min"
        return ScalingDecision(low, "scale_out", why, f"raised to the minimum of {low} workers")
    latest = samples[-1] if samples else None
    if latest is None or not latest.reachable:
        # Without the coordinator's numbers nothing is known, and a worker cannot be drained:
        # never shrink on silence.
        return _hold(state, "coordinator_unreachable", "no answer from the coordinator")
    if state.current > high:
        why = "quota" if high < policy.max_count else "above_max"
        return ScalingDecision(high, "scale_in", why, f"lowered to the maximum of {high} workers")

    pressured = _window(samples, now, policy.scale_out_window_seconds)
    if pressured and all(s.reachable and _pressure(policy, s) for s in pressured):
        if state.current >= high:
            if state.quota is not None and high == state.quota and high < policy.max_count:
                return _hold(state, "quota_reached", f"organisation quota of {high} workers")
            return _hold(state, "at_max", f"queries waiting at the maximum of {high} workers")
        if latest.active_workers < state.current:
            return _hold(
                state,
                "waiting_for_workers",
                f"{latest.active_workers} of {state.current} workers active",
            )
        if in_cooldown:
            return _hold(state, "cooldown", "under load, within the cooldown")
        # A deep queue asks for more than one step at once (as many workers as it would fill).
        by_queue = math.ceil(
            max(latest.queued - policy.target_queued, 0) / policy.queries_per_worker
        )
        step = max(policy.scale_out_step, by_queue)
        desired = min(state.current + step, high)
        return ScalingDecision(
            desired,
            "scale_out",
            "load_high",
            f"queued {latest.queued}, cpu {latest.cpu:.0%}, memory {latest.memory:.0%} "
            f"above target for {policy.scale_out_window_seconds}s",
        )

    suspend = _idle_suspend(policy, samples, state, now, in_cooldown)
    if suspend is not None:
        return suspend

    idle = _window(samples, now, policy.scale_in_idle_minutes * 60)
    if idle and all(s.reachable and _underused(policy, s) for s in idle):
        if state.current <= low:
            return _hold(state, "at_min", f"idle at the minimum of {low} workers")
        if in_cooldown:
            return _hold(state, "cooldown", "idle, within the cooldown")
        desired = max(state.current - policy.scale_in_step, low)
        return ScalingDecision(
            desired,
            "scale_in",
            "idle",
            f"load below {SCALE_IN_FRACTION:.0%} of target for {policy.scale_in_idle_minutes} min",
        )
    return _hold(state, "within_target", "load within target")
