"""Bootstrap end to end: a real Celery worker builds a compute plane in the emulator, its last
step starts the plane's local agent process, which registers over HTTP (``live_server``) and
heartbeats; the plane is ``ready`` only then. The agent applies what is published into its
directory, and deleting the plane stops the process and removes its files."""

from __future__ import annotations

import time
from typing import Any

import pytest

from computeplane_agent.targets.directory import DirectoryTarget
from controlplane.agentapi.models import AgentPresence
from controlplane.agentapi.services import publish_desired_state
from controlplane.computeplanes import agentinstall
from controlplane.computeplanes.api.serializers import ComputePlaneSerializer
from controlplane.core.models import OperationStep
from controlplane.tenancy.models import Organization
from tests.agent.factories import desired_state
from tests.e2e.test_computeplane_workflow import Env, plane_env, worker  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]


def _wait(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_plane_is_ready_once_its_local_agent_registered_and_delete_stops_it(
    plane_env: Env,  # noqa: F811
    org: Organization,
    settings: Any,
) -> None:
    env = plane_env
    settings.LAKEPLANE_LOCAL_AGENTS_DIR = str(env.worker.agents)
    plane = env.build(env.verified_account(org))

    shown = ComputePlaneSerializer(plane).data
    assert shown["status"] == "ready"
    assert shown["agent"]["status"] == "connected"
    assert plane.bootstrap_token_digest == ""  # the one-time token was used
    wait = OperationStep.objects.get(operation_id=plane.operation_id, name="wait_for_agent")
    assert wait.status == "succeeded"

    pid = agentinstall.running_pid(plane.pk)
    assert pid is not None
    assert agentinstall.credential_file(plane.pk).exists()
    _wait(
        lambda: AgentPresence.objects.filter(
            compute_plane_id=plane.pk, heartbeat_sent_at__isnull=False
        ).exists(),
        "the agent's first heartbeat",
    )

    # The agent is live: what the control plane publishes lands in its directory.
    root = agentinstall.manifests_dir(plane.pk)
    assert DirectoryTarget(root).list_managed() == []
    publish_desired_state(plane, desired_state().model_copy(update={"compute_plane_id": plane.pk}))
    managed = _wait(lambda: DirectoryTarget(root).list_managed(), "the agent to apply objects")
    kinds = {m.ref.kind for m in managed}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    # Manifests are YAML; the directory target also records the SQL it ran against a Trino
    # coordinator (dynamic catalogs) under _catalog-statements/, once the coordinator is ready.
    manifests = [p for p in root.rglob("*") if p.is_file() and "_catalog-statements" not in p.parts]
    assert [p for p in manifests if p.suffix != ".yaml"] == []

    env.delete(plane)
    assert agentinstall.running_pid(plane.pk) is None
    assert not agentinstall._is_agent(pid)
    assert not agentinstall.agent_dir(plane.pk).exists()
