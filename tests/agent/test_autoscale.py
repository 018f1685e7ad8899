"""The autoscaling decision, table-driven, and its bounds and cooldown as properties."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from computeplane_agent.autoscale import (
    AutoscalingPolicy,
    LoadSample,
    ScalingState,
    decide,
)

POLICY = AutoscalingPolicy(
    enabled=True,
    min_count=2,
    max_count=10,
    target_queued=0,
    target_cpu=0.8,
    scale_out_window_seconds=60,
    scale_in_idle_minutes=5,
    scale_out_step=2,
    scale_in_step=1,
    cooldown_seconds=120,
)
INTERVAL = 15


def trace(minutes: float, end: float = 3600.0, workers: int = 4, **load: float) -> list[LoadSample]:
    """Samples every INTERVAL seconds over the last ``minutes`` up to ``end``, all alike."""
    count = int(minutes * 60 / INTERVAL) + 1
    return [
        LoadSample(at=end - i * INTERVAL, reachable=True, active_workers=workers, **load)  # type: ignore[arg-type]
        for i in reversed(range(count))
    ]


NOW = 3600.0


@pytest.mark.parametrize(
    ("name", "samples", "state", "policy", "desired", "reason"),
    [
        ("steady load", trace(10, cpu=0.6, running=3), ScalingState(4), POLICY, 4, "within_target"),
        ("burst", trace(2, queued=3, running=8, cpu=0.9), ScalingState(4), POLICY, 6, "load_high"),
        (
            "burst shorter than the window",
            trace(10, cpu=0.5)[:-3] + trace(0.5, queued=5, cpu=0.95),
            ScalingState(4),
            POLICY,
            4,
            "within_target",
        ),
        (
            "deep queue asks for more than a step",
            trace(2, queued=20, running=16, cpu=0.95),
            ScalingState(4),
            POLICY,
            9,
            "load_high",
        ),
        (
            "slow ramp crossing the target",
            [replace(s, cpu=0.5 + i * 0.01) for i, s in enumerate(trace(10))],
            ScalingState(4),
            POLICY,
            6,
            "load_high",
        ),
        ("idle", trace(6), ScalingState(4), POLICY, 3, "idle"),
        ("idle at min", trace(6), ScalingState(2), POLICY, 2, "at_min"),
        (
            "idle, but not for long enough",
            trace(10, cpu=0.6)[:-8] + trace(1.5),
            ScalingState(4),
            POLICY,
            4,
            "within_target",
        ),
        (
            "noisy samples around the target do neither",
            [replace(s, cpu=0.75 if i % 2 else 0.85) for i, s in enumerate(trace(10))],
            ScalingState(4),
            POLICY,
            4,
            "within_target",
        ),
        (
            "max reached",
            trace(2, queued=9, cpu=0.95, workers=10),
            ScalingState(10),
            POLICY,
            10,
            "at_max",
        ),
        (
            "quota reached",
            trace(2, queued=9, cpu=0.95, workers=6),
            ScalingState(6, quota=6),
            POLICY,
            6,
            "quota_reached",
        ),
        ("above the quota", trace(2), ScalingState(8, quota=6), POLICY, 6, "quota"),
        ("below min", trace(2), ScalingState(1), POLICY, 2, "below_min"),
        ("schedule floor", trace(2), ScalingState(2, schedule_floor=4), POLICY, 4, "schedule"),
        (
            "within the cooldown",
            trace(2, queued=3, cpu=0.9),
            ScalingState(4, last_change_at=NOW - 60),
            POLICY,
            4,
            "cooldown",
        ),
        (
            "new workers not active yet",
            trace(2, queued=3, cpu=0.9, workers=4),
            ScalingState(6, last_change_at=NOW - 600),
            POLICY,
            6,
            "waiting_for_workers",
        ),
        (
            "coordinator does not answer",
            [*trace(10), LoadSample(at=NOW + 15, reachable=False)],
            ScalingState(4),
            POLICY,
            4,
            "coordinator_unreachable",
        ),
        (
            "a silent sample in the idle window blocks scale-in",
            [*trace(10)[:-4], LoadSample(at=NOW - 45, reachable=False), *trace(0.5)],
            ScalingState(4),
            POLICY,
            4,
            "within_target",
        ),
        ("no samples", [], ScalingState(4), POLICY, 4, "coordinator_unreachable"),
        (
            "idle past auto-suspend",
            trace(31),
            ScalingState(4),
            replace(POLICY, auto_suspend_minutes=30),
            0,
            "idle_suspend",
        ),
        (
            "a running query keeps it awake",
            trace(31, running=1),
            ScalingState(4),
            replace(POLICY, auto_suspend_minutes=30),
            3,
            "idle",
        ),
        (
            "a schedule window keeps it awake",
            trace(31),
            ScalingState(4, schedule_floor=4),
            replace(POLICY, auto_suspend_minutes=30),
            4,
            "at_min",
        ),
        (
            "disabled",
            trace(2, queued=50),
            ScalingState(4),
            replace(POLICY, enabled=False),
            4,
            "disabled",
        ),
        ("suspended", trace(2), ScalingState(0, suspended=True), POLICY, 0, "suspended"),
        (
            "auto-suspend acts with autoscaling off",
            trace(31),
            ScalingState(4),
            replace(POLICY, enabled=False, auto_suspend_minutes=30),
            0,
            "idle_suspend",
        ),
        (
            "autoscaling off, a query in the window",
            trace(31, running=1),
            ScalingState(4),
            replace(POLICY, enabled=False, auto_suspend_minutes=30),
            4,
            "disabled",
        ),
    ],
)
def test_decision_table(name, samples, state, policy, desired, reason):
    now = samples[-1].at if samples else NOW
    decision = decide(policy, samples, state, now)
    assert (decision.desired, decision.reason) == (desired, reason), name
    assert decision.changes == (desired != state.current)


sample_load = st.builds(
    LoadSample,
    at=st.just(0.0),
    reachable=st.integers(0, 9).map(lambda n: n > 0),  # one sample in ten unanswered
    queued=st.integers(0, 40),
    running=st.integers(0, 20),
    active_workers=st.integers(0, 12),
    cpu=st.floats(0, 1),
    memory=st.floats(0, 1),
)

policies = st.builds(
    AutoscalingPolicy,
    enabled=st.just(True),
    min_count=st.integers(0, 5),
    max_count=st.integers(5, 20),
    target_queued=st.integers(0, 4),
    target_cpu=st.floats(0.3, 0.95),
    target_memory=st.floats(0.3, 0.95),
    scale_out_window_seconds=st.integers(15, 180),
    scale_in_idle_minutes=st.integers(1, 10),
    scale_out_step=st.integers(1, 4),
    scale_in_step=st.integers(1, 3),
    cooldown_seconds=st.integers(30, 600),
    auto_suspend_minutes=st.none() | st.integers(2, 30),
)


def simulate(policy, loads, quota, floor):
    """Run the agent's loop over a load trace; yield (time, state before, decision)."""
    state = ScalingState(current=policy.min_count, quota=quota, schedule_floor=floor)
    history: list[LoadSample] = []
    for i, load in enumerate(loads):
        now = float(i * INTERVAL)
        history.append(
            replace(load, at=now, active_workers=min(load.active_workers, state.current))
        )
        decision = decide(policy, history, state, now)
        yield now, state, decision
        if decision.changes:
            state = replace(
                state,
                current=decision.desired,
                last_change_at=now,
                suspended=decision.action == "suspend",
            )


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    loads=st.lists(sample_load, min_size=1, max_size=200),
    quota=st.none() | st.integers(0, 20),
    floor=st.integers(0, 8),
)
def test_never_outside_bounds_and_never_flaps(policy, loads, quota, floor):
    high = policy.max_count if quota is None else min(policy.max_count, quota)
    low = min(max(policy.min_count, floor), high)
    changes = []
    for now, state, decision in simulate(policy, loads, quota, floor):
        if decision.action == "suspend":
            assert decision.desired == 0
            assert floor == 0
            assert policy.auto_suspend_minutes is not None
        elif decision.changes:
            assert low <= decision.desired <= high
        elif not state.suspended and state.current == decision.desired and state.current > high:
            # Only a silent coordinator may leave it above the ceiling (nothing can be drained).
            assert decision.reason == "coordinator_unreachable"
        if decision.changes:
            changes.append((now, decision))
    # Only the first change may be a bounds correction (the cluster starts at min_count);
    # every later change waits out the cooldown after the one before.
    for (t1, _), (t2, d2) in itertools.pairwise(changes):
        assert t2 - t1 >= policy.cooldown_seconds, (d2.reason, t2 - t1)


@settings(max_examples=200, deadline=None)
@given(policy=policies, loads=st.lists(sample_load, min_size=1, max_size=100))
def test_never_shrinks_on_an_unreachable_coordinator(policy, loads):
    history = [replace(s, at=float(i * INTERVAL)) for i, s in enumerate(loads)]
    history.append(LoadSample(at=len(loads) * INTERVAL + 0.0, reachable=False))
    state = ScalingState(current=max(policy.min_count, 3))
    decision = decide(policy, history, state, history[-1].at)
    assert not decision.changes
    assert decision.reason == "coordinator_unreachable"


@settings(max_examples=200, deadline=None)
@given(policy=policies, cpu=st.floats(0, 1), queued=st.integers(0, 40))
def test_pressure_never_shrinks_and_idle_never_grows(policy, cpu, queued):
    """Under pressure the count never goes down; idle it never goes up (within bounds)."""
    start = (policy.min_count + policy.max_count) // 2
    samples = trace(40, end=NOW, workers=start, cpu=cpu, queued=queued)
    decision = decide(policy, samples, ScalingState(start), NOW)
    if queued > policy.target_queued or cpu > policy.target_cpu:
        assert decision.desired >= start
    if queued == 0 and cpu <= policy.target_cpu:
        assert decision.desired <= start
