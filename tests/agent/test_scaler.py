"""The agent's autoscaler between the pure decision and the worker Deployment: sampling, the
agent's own count until the control plane catches up, answers, and the cost of a tick."""

from __future__ import annotations

from datetime import UTC, datetime

from computeplane_agent.contract import ScalingAnswer
from computeplane_agent.coordinator import CoordinatorLoad, parse_load
from computeplane_agent.scaler import Autoscaler
from computeplane_agent.targets.memory import MemoryTarget
from tests.agent.factories import CLUSTER_ID, cluster_spec, desired_state

AGENT = "agt_01hv0000000000000000000000"
POLICY = {
    "enabled": True,
    "min_count": 1,
    "max_count": 8,
    "scale_out_window_seconds": 60,
    "scale_in_idle_minutes": 5,
    "cooldown_seconds": 120,
}
BUSY = CoordinatorLoad(running=4, queued=6, active_workers=8, cpu=0.9, memory=0.4)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def setup(replicas: int = 3, **policy):
    target = MemoryTarget()
    clock = Clock()
    scaler = Autoscaler(target, agent_id=AGENT, clock=clock)
    spec = cluster_spec(
        workers={"replicas": replicas}, autoscaling={**POLICY, **policy}, catalogs=[]
    )
    return target, clock, scaler, desired_state(clusters=[spec], catalogs=[])


def resized(desired, count: int):
    """The next published desired state, with ``count`` workers."""
    spec = desired.clusters[0]
    workers = spec.workers.model_copy(update={"replicas": count})
    return desired_state(
        version=desired.version + 1,
        clusters=[spec.model_copy(update={"workers": workers})],
        catalogs=[],
    )


def replicas(scaler: Autoscaler, desired) -> int:
    return scaler.effective(desired).clusters[0].workers.replicas


def run(scaler: Autoscaler, clock: Clock, desired, seconds: float):
    reports = []
    end = clock.now + seconds
    while clock.now <= end:
        reports += scaler.tick(desired)
        clock.now += 5
    return reports


def test_sustained_queue_scales_out_once_and_holds_the_count_until_published():
    target, clock, scaler, desired = setup()
    target.loads[CLUSTER_ID] = BUSY
    reports = run(scaler, clock, desired, 60)
    (report,) = reports
    assert (report.from_count, report.to_count, report.action, report.reason) == (
        3,
        5,
        "scale_out",
        "load_high",
    )
    assert replicas(scaler, desired) == 5
    # Unanswered: sent again as it is (same id), and no second decision meanwhile.
    again = scaler.tick(desired)
    assert [r.report_id for r in again] == [report.report_id]
    scaler.answered(
        ScalingAnswer(report_id=report.report_id, cluster_id=CLUSTER_ID, accepted=True, workers=5)
    )
    assert scaler.tick(desired) == []
    assert replicas(scaler, desired) == 5
    # The control plane publishes 5: the agent's own count is no longer needed.
    published = resized(desired, 5)
    assert replicas(scaler, published) == 5
    assert scaler.clusters[CLUSTER_ID].override is None


def test_a_lowered_or_refused_answer_wins():
    target, clock, scaler, desired = setup()
    target.loads[CLUSTER_ID] = BUSY
    (report,) = run(scaler, clock, desired, 60)
    scaler.answered(
        ScalingAnswer(report_id=report.report_id, cluster_id=CLUSTER_ID, accepted=True, workers=4)
    )
    assert replicas(scaler, desired) == 4
    clock.now += 600
    (second,) = run(scaler, clock, desired, 60)
    assert second.from_count == 4
    scaler.answered(
        ScalingAnswer(
            report_id=second.report_id,
            cluster_id=CLUSTER_ID,
            accepted=False,
            workers=3,
            message="The cluster is resizing.",
        )
    )
    assert replicas(scaler, desired) == 3  # back to the published count


def test_a_user_resize_meanwhile_drops_the_agents_count():
    target, clock, scaler, desired = setup()
    target.loads[CLUSTER_ID] = BUSY
    run(scaler, clock, desired, 60)
    assert replicas(scaler, desired) == 5
    assert replicas(scaler, resized(desired, 7)) == 7


def test_one_read_of_the_coordinator_per_sample_interval_and_none_without_a_policy():
    target, clock, scaler, desired = setup()
    target.loads[CLUSTER_ID] = CoordinatorLoad(0, 0, 3, 0.3, 0.3)
    run(scaler, clock, desired, 60)  # ticks every 5 s, samples every 15 s
    assert target.load_reads == 5
    plain = desired_state(clusters=[cluster_spec(catalogs=[])], catalogs=[])
    scaler.tick(plain)
    assert target.load_reads == 5
    assert not scaler.active


def test_a_silent_coordinator_is_no_decision():
    _, clock, scaler, desired = setup()
    assert run(scaler, clock, desired, 20 * 60) == []
    assert scaler.clusters[CLUSTER_ID].last_decision.reason == "coordinator_unreachable"
    assert replicas(scaler, desired) == 3


def test_the_coordinators_documents_are_read_as_counts():
    load = parse_load(
        {"runningQueries": 3, "queuedQueries": 2, "activeWorkers": 4},
        [
            {"uri": "w1", "processCpuLoad": 0.5, "heapUsed": 50, "heapAvailable": 100},
            {"uri": "w2", "processCpuLoad": 0.9, "heapUsed": 10, "heapAvailable": 100},
            {"uri": "w3"},
        ],
    )
    assert (load.running, load.queued, load.active_workers) == (3, 2, 4)
    assert round(load.cpu, 2) == 0.7
    assert round(load.memory, 2) == 0.3
    for bad in ([], {"runningQueries": -1}, {"queuedQueries": "2"}, {"activeWorkers": True}):
        try:
            parse_load(bad, [])
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read as a load")


def test_a_schedule_window_raises_the_floor_even_without_load():
    target = MemoryTarget()
    clock = Clock()
    scaler = Autoscaler(
        target,
        agent_id=AGENT,
        clock=clock,
        wall_clock=lambda: datetime(2026, 12, 7, 9, 0, tzinfo=UTC),  # a Monday, 09:00 UTC
    )
    office = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00",
              "min_count": 4}  # fmt: skip
    spec = cluster_spec(
        workers={"replicas": 2}, autoscaling={**POLICY, "schedules": [office]}, catalogs=[]
    )
    desired = desired_state(clusters=[spec], catalogs=[])
    (report,) = scaler.tick(desired)
    assert (report.from_count, report.to_count, report.reason) == (2, 4, "schedule")
    assert replicas(scaler, desired) == 4
