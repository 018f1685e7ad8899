"""The agent's autoscaler end to end through the control plane: the real agent loop (with the
in-memory target and its coordinator numbers) decides, applies the worker count and reports it
over the real agent API; the control plane records the scaling event and resizes the node group
in the emulator through the resize operation; the next desired state carries the count."""

from __future__ import annotations

from typing import Any

import pytest

from computeplane_agent.agent import Agent
from computeplane_agent.contract import (
    AgentCredential,
    DesiredState,
    Heartbeat,
    Registration,
    ScalingAnswer,
    ScalingReport,
    StatusReport,
    UsageReport,
)
from computeplane_agent.coordinator import CoordinatorLoad
from computeplane_agent.render import resource_prefix
from computeplane_agent.targets.base import ObjectRef
from computeplane_agent.targets.memory import MemoryTarget
from controlplane.clusters.models import Cluster, ScalingEvent
from controlplane.core.models import Operation
from tests.agentapi.conftest import DESIRED, HEARTBEAT, STATUS, USAGE
from tests.clusters.conftest import drive
from tests.clusters.test_cluster_lifecycle import node_groups, sizes

pytestmark = pytest.mark.django_db

SCALING = "/api/agent/v1/scaling"
BUSY = CoordinatorLoad(running=8, queued=9, active_workers=2, cpu=0.95, memory=0.5)
BUSIER = CoordinatorLoad(running=8, queued=9, active_workers=3, cpu=0.95, memory=0.5)
IDLE = CoordinatorLoad(running=0, queued=0, active_workers=4, cpu=0.02, memory=0.1)


class AgentApiClient:
    """``ControlPlaneClient`` over the Django test client: the agent's calls reach the real
    agent API views (and their on-commit callbacks run, as after a real request)."""

    def __init__(self, agent: Any, capture: Any) -> None:
        self.http = agent.client
        self.capture = capture
        self.scaling_answers: list[ScalingAnswer] = []

    def register(self, registration: Registration) -> AgentCredential:
        raise NotImplementedError("registered by the fixture")

    def desired_state(self, known_version: int | None, wait_seconds: int) -> DesiredState | None:
        headers = {} if known_version is None else {"HTTP_IF_NONE_MATCH": f'"{known_version}"'}
        response = self.http.get(DESIRED, {"wait": 0}, **headers)
        if response.status_code == 304:
            return None
        assert response.status_code == 200, response.content
        return DesiredState.model_validate_json(response.content)

    def _post(self, path: str, body: Any) -> Any:
        with self.capture(execute=True):
            response = self.http.post(path, body.model_dump_json(), content_type="application/json")
        assert response.status_code in (200, 202), (path, response.content)
        return response

    def status(self, report: StatusReport) -> None:
        self._post(STATUS, report)

    def heartbeat(self, heartbeat: Heartbeat) -> None:
        self._post(HEARTBEAT, heartbeat)

    def usage(self, report: UsageReport) -> None:
        self._post(USAGE, report)

    def scaling(self, report: ScalingReport) -> ScalingAnswer:
        answer = ScalingAnswer.model_validate_json(self._post(SCALING, report).content)
        self.scaling_answers.append(answer)
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def running(owner, ready_plane, sim_agent):
    """An autoscaled cluster (2 workers, 1..6) brought up by its create operation."""
    response = owner.client.post(
        f"/api/v1/orgs/{owner.org.slug}/clusters",
        {
            "name": "elastic",
            "compute_plane": ready_plane.id,
            "engine": "trino",
            "coordinator": {"instance_type": "m6i.xlarge"},
            "workers": {"instance_type": "r6i.2xlarge", "count": 2},
            "autoscaling": {
                "enabled": True,
                "min_count": 1,
                "max_count": 6,
                "scale_out_window_seconds": 60,
                "scale_in_idle_minutes": 5,
                "cooldown_seconds": 120,
            },
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    assert drive(response.json()["operation"]["id"], sim_agent).operation.status == "succeeded"
    return Cluster.objects.get(pk=response.json()["id"])


@pytest.fixture
def agent(sim_agent, django_capture_on_commit_callbacks):
    target = MemoryTarget()
    client = AgentApiClient(sim_agent.agent, django_capture_on_commit_callbacks)
    clock = Clock()
    real = Agent(client, target, agent_id=sim_agent.agent.agent_id, poll_seconds=0)
    real.autoscaler.clock = clock
    return real, target, client, clock


def worker_replicas(target: MemoryTarget, cluster: Cluster) -> int:
    ref = ObjectRef(
        "apps/v1", "Deployment", "lakeplane-workloads", f"{resource_prefix(cluster.id)}-worker"
    )
    return int(target.objects[ref]["spec"]["replicas"])


def decision(sim_agent, cluster: Cluster, report_id: str, to: int, action: str) -> ScalingReport:
    """A report as the agent sends it, from the cluster's 2 workers."""
    return ScalingReport(
        agent_id=sim_agent.agent.agent_id,
        report_id=report_id,
        cluster_id=cluster.id,
        from_count=2,
        to_count=to,
        action=action,  # type: ignore[arg-type]
        reason="idle_suspend" if action == "suspend" else "load_high",
        decided_at=cluster.created_at,
    )


def run_for(real: Agent, clock: Clock, seconds: float, step: float = 15.0) -> None:
    end = clock.now + seconds
    while clock.now < end:
        real.run_once()
        clock.now += step


def test_queued_queries_grow_the_cluster_and_idle_shrinks_it(
    owner, sandbox, ready_plane, running, agent, sim_agent
):
    real, target, client, clock = agent
    cluster = running
    target.loads[cluster.id] = BUSY
    real.run_once()
    assert worker_replicas(target, cluster) == 2  # one sample does not make a window

    run_for(real, clock, 75)
    # Scaled out at once in the VPC: 2 + ceil((9 - 0) / 4) = 5 workers.
    assert worker_replicas(target, cluster) == 5
    (answer,) = client.scaling_answers
    assert (answer.accepted, answer.workers) == (True, 5)
    (event,) = ScalingEvent.objects.filter(cluster=cluster)
    assert (event.from_count, event.to_count, event.reason, event.source) == (
        2,
        5,
        "load_high",
        "autoscaler",
    )
    cluster.refresh_from_db()
    assert (cluster.status, cluster.workers_desired) == ("resizing", 5)

    # The control plane's side: the resize operation scales the node group in the emulator.
    drive(event.operation_id, sim_agent)
    assert Operation.objects.get(pk=event.operation_id).status == "succeeded"
    assert sizes(node_groups(sandbox, ready_plane, cluster)) == {"coordinator": 1, "workers": 5}
    real.run_once()  # the new desired state carries 5: the agent's own count is dropped
    assert real.autoscaler.clusters[cluster.id].override is None
    assert worker_replicas(target, cluster) == 5

    listed = owner.client.get(
        f"/api/v1/orgs/{owner.org.slug}/clusters/{cluster.id}/scaling-events"
    ).json()["results"]
    assert [(e["from"], e["to"], e["reason"], e["actor"]["type"]) for e in listed] == [
        (2, 5, "load_high", "agent")
    ]

    # Load gone: within the cooldown nothing moves, after the idle window one worker goes.
    target.loads[cluster.id] = IDLE
    run_for(real, clock, 5 * 60 + 30)
    assert worker_replicas(target, cluster) == 4
    assert [e.to_count for e in ScalingEvent.objects.filter(cluster=cluster).order_by("id")] == [
        5,
        4,
    ]


def test_a_silent_coordinator_changes_nothing(running, agent):
    real, target, client, clock = agent
    run_for(real, clock, 15 * 60)  # no load entry: the coordinator does not answer
    assert worker_replicas(target, running) == 2
    assert client.scaling_answers == []
    assert real.autoscaler.clusters[running.id].last_decision.reason == "coordinator_unreachable"


def test_a_decision_sent_again_is_taken_once(running, agent, sim_agent):
    real, target, client, clock = agent
    target.loads[running.id] = BUSY
    run_for(real, clock, 90)
    assert len(client.scaling_answers) == 1
    (event,) = ScalingEvent.objects.filter(cluster=running)
    # The same report again (its answer was lost): the same answer, no second event.
    again = client.scaling(decision(sim_agent, running, event.decision_id, 5, "scale_out"))
    assert (again.accepted, again.workers) == (True, 5)
    assert ScalingEvent.objects.filter(cluster=running).count() == 1
    assert Operation.objects.filter(kind="cluster.resize", target_id=running.id).count() == 1


def test_the_quota_caps_a_decision_and_a_refusal_puts_the_published_count_back(
    running, agent, settings
):
    real, target, client, clock = agent
    settings.LAKEPLANE_ORG_WORKER_QUOTA = 3
    target.loads[running.id] = BUSY
    run_for(real, clock, 90)
    (answer,) = client.scaling_answers
    assert (answer.accepted, answer.workers) == (True, 3)
    (event,) = ScalingEvent.objects.filter(cluster=running)
    assert (event.to_count, event.reason) == (3, "quota")
    assert worker_replicas(target, running) == 3

    # While the resize runs another decision is refused; the agent keeps the published count.
    target.loads[running.id] = BUSIER
    clock.now += 600
    run_for(real, clock, 90)
    refused = client.scaling_answers[-1]
    assert not refused.accepted
    assert "resizing" in (refused.message or "")
    # The agent holds the count the control plane keeps (3, its resize not published yet).
    assert refused.workers == 3
    assert worker_replicas(target, running) == 3


QUIET = CoordinatorLoad(running=0, queued=0, active_workers=2, cpu=0.01, memory=0.1)


def test_idle_past_auto_suspend_suspends_and_a_start_wakes_it(
    owner, sandbox, ready_plane, running, agent, sim_agent
):
    real, target, client, clock = agent
    cluster = running
    # Auto-suspend is its own setting: it acts with autoscaling off too.
    response = owner.client.patch(
        f"/api/v1/orgs/{owner.org.slug}/clusters/{cluster.id}",
        {"auto_suspend_minutes": 5, "autoscaling": {"enabled": False}},
        format="json",
    )
    assert response.status_code == 200, response.content
    target.loads[cluster.id] = QUIET
    run_for(real, clock, 4 * 60)
    assert client.scaling_answers == []  # not yet five minutes without a query
    run_for(real, clock, 90)
    (answer,) = client.scaling_answers
    assert (answer.accepted, answer.workers) == (True, 0)
    (event,) = ScalingEvent.objects.filter(cluster=cluster)
    assert (event.from_count, event.to_count, event.reason) == (2, 0, "idle_suspend")
    drive(event.operation_id, sim_agent)
    cluster.refresh_from_db()
    assert cluster.status == "suspended"  # not "stopped": nobody asked for it
    assert cluster.workers_desired == 2  # the configuration is kept
    assert sizes(node_groups(sandbox, ready_plane, cluster)) == {"coordinator": 0, "workers": 0}
    real.run_once()
    assert worker_replicas(target, cluster) == 0  # the agent stopped its pods
    assert cluster.id not in real.autoscaler.clusters

    # A query through the gateway wakes it with POST …/start (the gateway's wake does this).
    response = owner.client.post(f"/api/v1/orgs/{owner.org.slug}/clusters/{cluster.id}/start")
    assert response.status_code == 202, response.content
    drive(response.json()["operation"]["id"], sim_agent)
    cluster.refresh_from_db()
    assert cluster.status == "running"
    assert sizes(node_groups(sandbox, ready_plane, cluster)) == {"coordinator": 1, "workers": 2}


def test_auto_suspend_off_refuses_a_suspend(running, agent, sim_agent):
    _, _, client, _ = agent
    answer = client.scaling(decision(sim_agent, running, "a" * 32, 0, "suspend"))
    assert (answer.accepted, answer.workers) == (False, 2)
    assert "off" in (answer.message or "")
    running.refresh_from_db()
    assert running.status == "running"


def test_a_schedule_window_is_a_scaling_event_of_its_own_source(owner, running, agent):
    real, target, client, _ = agent
    always = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
              "end": "24:00", "min_count": 3}  # fmt: skip
    response = owner.client.patch(
        f"/api/v1/orgs/{owner.org.slug}/clusters/{running.id}",
        {"schedules": [always]},
        format="json",
    )
    assert response.status_code == 200, response.content
    real.run_once()  # the floor is configuration: no load window is needed
    (answer,) = client.scaling_answers
    assert (answer.accepted, answer.workers) == (True, 3)
    (event,) = ScalingEvent.objects.filter(cluster=running)
    assert (event.from_count, event.to_count, event.reason, event.source) == (
        2,
        3,
        "schedule",
        "schedule",
    )
    assert worker_replicas(target, running) == 3
