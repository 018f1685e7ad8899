"""Drain: ``POST …/clusters/{id}/drain`` takes the cluster out of routing (ClusterSpec.draining)
and its operation ends when the agent's gateway reports the cluster empty."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from controlplane.agentapi.services import current_desired_state
from controlplane.clusters.models import Cluster
from controlplane.core.models import Operation, OperationStep
from controlplane.core.workflows import Outcome, claim_next_step, run_claimed_step
from tests.agentapi.conftest import STATUS, register
from tests.factories import ClusterFactory, ComputePlaneFactory

pytestmark = pytest.mark.django_db


def report(agent, gateway=None, applied=None):
    doc = agent.client.get("/api/agent/v1/desired-state", {"wait": 0}).json()
    now = timezone.now().isoformat()
    body = {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "applied_version": doc["version"] if applied is None else applied,
        "sent_at": now,
        "clusters": [
            {
                "id": c["id"],
                "phase": "running",
                "coordinator_ready": True,
                "workers_ready": c["workers"]["replicas"],
                "workers_desired": c["workers"]["replicas"],
                "observed_at": now,
            }
            for c in doc["clusters"]
        ],
        **({"gateway": gateway} if gateway is not None else {}),
    }
    response = agent.client.post(STATUS, body, format="json")
    assert response.status_code == 200, response.content


def step(operation_id: str) -> tuple[str, bool]:
    """Run the operation's next step: (step name, whether the operation is now done)."""
    claimed = claim_next_step(operation_id)
    if isinstance(claimed, Outcome):
        return "", True
    outcome = run_claimed_step(claimed)
    if not outcome.done and not outcome.next_countdown:
        remaining = OperationStep.objects.filter(operation_id=operation_id).exclude(
            status="succeeded"
        )
        if not remaining.exists():
            # That was the last step: the next delivery settles the operation.
            again = claim_next_step(operation_id)
            assert isinstance(again, Outcome)
            return claimed.step.name, again.done
    return claimed.step.name, outcome.done


@pytest.fixture
def setup(owner, django_capture_on_commit_callbacks):
    plane = ComputePlaneFactory(organization=owner.org)
    busy = ClusterFactory(organization=owner.org, compute_plane=plane, name="busy")
    other = ClusterFactory(organization=owner.org, compute_plane=plane, name="other")
    agent = register(plane)
    return plane, busy, other, agent


def test_a_drain_leaves_routing_and_ends_when_the_gateway_reports_empty(
    owner, setup, django_capture_on_commit_callbacks
):
    plane, busy, other, agent = setup
    base = f"/api/v1/orgs/{owner.org.slug}"
    response = owner.client.post(f"{base}/clusters/{busy.id}/drain")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["draining"] is True
    assert body["status"] == "running"
    operation_id = body["operation"]["id"]
    assert Operation.objects.get(pk=operation_id).kind == "cluster.drain"

    assert step(operation_id) == ("publish_desired_state", False)
    spec = current_desired_state(plane)
    assert [c.draining for c in spec.clusters if c.id == busy.id] == [True]
    # New queries go elsewhere (the gateway's own routing, as the dry run shows).
    decision = owner.client.post(
        f"{base}/compute-planes/{plane.id}/gateway/route?dry_run=true", {}, format="json"
    ).json()
    assert decision["cluster"] == other.id
    assert any("busy is draining" in r for r in decision["reasons"])

    # Not applied yet, then applied with a query still running there: the drain waits.
    assert step(operation_id) == ("wait_for_drained", False)
    gateway = {"endpoint": "http://127.0.0.1:18080", "replicas_ready": 2, "drained": []}
    with django_capture_on_commit_callbacks(execute=True):
        report(agent, gateway)
    assert step(operation_id) == ("wait_for_drained", False)
    waiting = OperationStep.objects.get(operation_id=operation_id, name="wait_for_drained")
    assert waiting.detail == "waiting for the gateway to report the cluster empty (applied)"
    with django_capture_on_commit_callbacks(execute=True):
        report(agent, {**gateway, "drained": [busy.id]})
    assert step(operation_id) == ("wait_for_drained", True)
    operation = Operation.objects.get(pk=operation_id)
    assert operation.status == "succeeded"
    busy.refresh_from_db()
    assert busy.status == "running"
    assert busy.draining is True

    # The gateway's document shows what the agent reported.
    doc = owner.client.get(f"{base}/compute-planes/{plane.id}/gateway").json()
    assert doc["endpoint"] == "http://127.0.0.1:18080"
    assert doc["status"] == "running"

    # Ending the drain puts it back into routing.
    response = owner.client.patch(f"{base}/clusters/{busy.id}", {"draining": False}, format="json")
    assert response.status_code == 200, response.content
    assert [c.draining for c in current_desired_state(plane).clusters if c.id == busy.id] == [False]
    response = owner.client.patch(f"{base}/clusters/{busy.id}", {"draining": True}, format="json")
    assert response.status_code == 422
    assert "draining" in response.json()["errors"]


def test_without_a_gateway_a_drain_ends_once_applied(
    owner, setup, django_capture_on_commit_callbacks
):
    _, busy, _, agent = setup
    response = owner.client.post(f"/api/v1/orgs/{owner.org.slug}/clusters/{busy.id}/drain")
    operation_id = response.json()["operation"]["id"]
    step(operation_id)
    with django_capture_on_commit_callbacks(execute=True):
        report(agent)  # an agent that runs no gateway reports none
    assert step(operation_id) == ("wait_for_drained", True)
    assert Operation.objects.get(pk=operation_id).status == "succeeded"


def test_only_a_running_cluster_drains_and_a_start_ends_a_drain(owner, setup):
    _, busy, _, _ = setup
    Cluster.objects.filter(pk=busy.id).update(status="stopped", draining=True)
    response = owner.client.post(f"/api/v1/orgs/{owner.org.slug}/clusters/{busy.id}/drain")
    assert response.status_code == 409
    response = owner.client.post(f"/api/v1/orgs/{owner.org.slug}/clusters/{busy.id}/start")
    assert response.status_code == 202, response.content
    assert response.json()["draining"] is False
