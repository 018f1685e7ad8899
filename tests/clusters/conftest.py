"""A ready compute plane in the emulator, a simulated agent speaking the real agent API, and a
driver that plays the operation engine's deliveries one by one.

Why the engine is driven by hand: the workflows wait for the agent (``wait_for_agent`` raises
RetryLater), and eager Celery re-runs a RetryLater at once, so a waiting step would loop forever
inside the request that started it. These tests are non-transactional instead: ``on_commit``
never fires, so a POST only writes the operation, and :func:`drive` runs each delivery with the
engine's own ``claim_next_step``/``run_claimed_step``. Between deliveries the simulated agent
acts as a real one would: it reads the desired state from ``GET /api/agent/v1/desired-state``
and posts a contract ``StatusReport`` to ``/api/agent/v1/status`` (whose ``status_reported``
signal, an on-commit callback, is executed explicitly).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from controlplane.cloudaccounts.aws import reset_aws_clients
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.workflows import RECONCILERS, context_for
from controlplane.core.models import Operation
from controlplane.core.workflows import Outcome, claim_next_step, run_claimed_step
from controlplane.providers.aws.reconcilers.base import WaitFor
from controlplane.sandbox.customers import create_customer_role
from tests.agentapi.conftest import DESIRED, STATUS, Agent, register
from tests.factories import CloudAccountFactory, ComputePlaneFactory


@pytest.fixture
def verified_account(sandbox, settings, owner):
    """A cloud account whose customer role exists in a fresh emulator account."""
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_VENDOR_PRINCIPAL = sandbox.vendor_principal
    reset_aws_clients()
    account = CloudAccountFactory(organization=owner.org, aws_account_id=sandbox.account_id)
    customer = create_customer_role(
        sandbox.endpoint_url,
        external_id=account.external_id,
        account_id=sandbox.account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    account.role_arn = customer.role_arn
    account.status = "verified"
    account.save()
    yield account
    reset_aws_clients()


@pytest.fixture
def ready_plane(verified_account, owner) -> ComputePlane:
    """Built by the compute plane's own reconcilers (the workflow's agent step is not needed)."""
    plane = ComputePlaneFactory(
        organization=owner.org, cloud_account=verified_account, status="provisioning"
    )
    for reconciler in RECONCILERS:
        for _ in range(10):
            plane.refresh_from_db()
            try:
                reconciler.ensure(context_for(plane))
                break
            except WaitFor:
                continue
        else:
            raise AssertionError(f"{reconciler.name} never converged")
    plane.refresh_from_db()
    plane.status = "ready"
    plane.save(update_fields=["status"])
    return plane


@dataclass
class SimulatedAgent:
    """Behaves like computeplane_agent on the wire: reads desired state, reports status."""

    agent: Agent
    capture: Any
    # Workers it reports ready are capped by this (None: all of them), to play slow nodes.
    ready_workers: int | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)

    def desired(self) -> dict[str, Any]:
        response = self.agent.client.get(DESIRED, {"wait": 0})
        assert response.status_code == 200, response.content
        return response.json()

    def report(self) -> dict[str, Any]:
        doc = self.desired()
        now = timezone.now().isoformat()
        clusters = []
        for spec in doc["clusters"]:
            running = spec["state"] == "running"
            replicas = spec["workers"]["replicas"] if running else 0
            ready = replicas if self.ready_workers is None else min(replicas, self.ready_workers)
            phase = ("running" if ready == replicas else "starting") if running else "stopped"
            clusters.append(
                {
                    "id": spec["id"],
                    "phase": phase,
                    "coordinator_ready": running,
                    "workers_ready": ready,
                    "workers_desired": replicas,
                    "observed_at": now,
                }
            )
        body = {
            "agent_id": self.agent.agent_id,
            "report_id": uuid.uuid4().hex,
            "applied_version": doc["version"],
            "sent_at": now,
            "clusters": clusters,
        }
        with self.capture(execute=True):
            response = self.agent.client.post(STATUS, body, format="json")
        assert response.status_code == 200, response.content
        self.reports.append(body)
        return body


@pytest.fixture
def sim_agent(ready_plane, django_capture_on_commit_callbacks) -> SimulatedAgent:
    return SimulatedAgent(register(ready_plane), django_capture_on_commit_callbacks)


@dataclass
class Driven:
    operation: Operation
    waits: int  # wait_for_agent polls that found the cluster not there yet


def drive(
    operation_id: str,
    agent: SimulatedAgent | None,
    max_deliveries: int = 40,
    stop_after_waits: int | None = None,
) -> Driven:
    """Deliver ``advance_operation`` until the operation ends (or has waited
    ``stop_after_waits`` times); the agent reports after each wait_for_agent poll that had to
    wait, so every wait is observed at least once."""
    waits = 0
    for _ in range(max_deliveries):
        claimed = claim_next_step(operation_id)
        if isinstance(claimed, Outcome):
            assert claimed.done, "a lease is held: nothing else should run this operation"
            return Driven(Operation.objects.get(pk=operation_id), waits)
        outcome = run_claimed_step(claimed)
        if outcome.done:
            return Driven(Operation.objects.get(pk=operation_id), waits)
        if claimed.step.name == "wait_for_agent" and outcome.next_countdown:
            waits += 1
            if agent is not None:
                agent.report()
            if waits == stop_after_waits:
                return Driven(Operation.objects.get(pk=operation_id), waits)
    raise AssertionError(f"{operation_id} did not finish in {max_deliveries} deliveries")
