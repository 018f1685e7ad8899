"""The create workflow's last steps: install the agent (a real local process in the sandbox) and
wait until it has registered over HTTP (``live_server``); deletion stops it."""

from __future__ import annotations

import io
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from controlplane.agentapi.models import BOOTSTRAP_SCHEME, AgentPresence
from controlplane.computeplanes import agentinstall
from controlplane.computeplanes.models import ComputePlane
from controlplane.core import workflows
from controlplane.core.audit import Actor
from controlplane.core.models import Operation, OperationStep
from tests.computeplanes.test_compute_planes import _body, _url

pytestmark = pytest.mark.django_db(transaction=True)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _agents_of(plane_id: str) -> list[int]:
    """Every live agent process on this machine whose credential file is this plane's."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"computeplane_agent" not in (proc / "cmdline").read_bytes():
                continue
            env = _environ(int(proc.name))
        except OSError:
            continue
        if plane_id in env.get("LAKEPLANE_CREDENTIAL_FILE", "") and agentinstall._is_agent(
            int(proc.name)
        ):
            pids.append(int(proc.name))
    return pids


def _rerun_create(plane: ComputePlane) -> Operation:
    operation = workflows.start_operation(
        actor=Actor.system_actor("test"),
        organization=plane.organization,
        kind="computeplane.create",
        target=plane,
    )
    return Operation.objects.get(pk=operation.pk)


def _wait(condition, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_agent_registers_stays_single_and_is_stopped_by_delete(
    owner, verified_account, local_agents, caplog
):
    caplog.set_level(logging.DEBUG)
    response = owner.client.post(_url(owner), _body(verified_account), format="json")
    assert response.status_code == 202, response.content
    plane_id = response.json()["id"]
    op = owner.client.get(response["Location"]).json()
    assert op["status"] == "succeeded", op
    assert [s["name"] for s in op["steps"]][-2:] == ["install_agent", "wait_for_agent"]
    plane = owner.client.get(_url(owner, f"/{plane_id}")).json()
    assert plane["status"] == "ready"
    assert plane["agent"]["status"] == "connected"

    (pid,) = _agents_of(plane_id)
    assert agentinstall.running_pid(plane_id) == pid
    base = local_agents / plane_id
    assert (base / "credential.json").stat().st_mode & 0o777 == 0o600
    assert (base / "manifests").is_dir()
    env = _environ(pid)
    assert env["LAKEPLANE_TARGET"] == "directory"
    assert env["LAKEPLANE_DIRECTORY_ROOT"] == str(base / "manifests")
    assert "DATABASE_URL" not in env
    assert "SECRET_KEY" not in env
    # Its AWS identity is the plane's agent role, assumed in the emulator; no keys of ours.
    assert env["AWS_PROFILE"] == "lakeplane-agent"
    assert env["AWS_CONFIG_FILE"] == str(base / "aws-config")
    agent_role_arn = ComputePlane.objects.get(pk=plane_id).resources["agent_role_arn"]
    assert f"role_arn = {agent_role_arn}\n" in (base / "aws-config").read_text()
    assert "AWS_ACCESS_KEY_ID" not in env
    token = env["LAKEPLANE_BOOTSTRAP_TOKEN"]
    assert token.startswith(f"{BOOTSTRAP_SCHEME}_")

    # The plaintext token is nowhere but in the agent's environment: not in the database (its
    # digest is gone too, it was used), not in our logs, not in the agent's log.
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert token not in dump.getvalue()
    assert token not in caplog.text
    assert token not in (base / "agent.log").read_text()
    assert ComputePlane.objects.get(pk=plane_id).bootstrap_token_digest == ""
    # ...and it heartbeats.
    _wait(
        lambda: AgentPresence.objects.filter(
            compute_plane_id=plane_id, heartbeat_sent_at__isnull=False
        ).exists(),
        "a heartbeat",
    )

    # A re-run of the create workflow leaves the running agent alone: no second process.
    plane_obj = ComputePlane.objects.get(pk=plane_id)
    rerun = _rerun_create(plane_obj)
    assert rerun.status == "succeeded", rerun.error_message
    install = OperationStep.objects.get(operation=rerun, name="install_agent")
    assert "already running" in install.detail
    assert _agents_of(plane_id) == [pid]

    # An agent that died is restarted from its credential, without a new bootstrap token.
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: agentinstall.running_pid(plane_id) is None, "the agent to die")
    rerun = _rerun_create(plane_obj)
    assert rerun.status == "succeeded", rerun.error_message
    (restarted,) = _agents_of(plane_id)
    assert restarted != pid
    assert "LAKEPLANE_BOOTSTRAP_TOKEN" not in _environ(restarted)
    assert ComputePlane.objects.get(pk=plane_id).bootstrap_token_digest == ""

    # runlakeplane's hooks: stop on Ctrl-C, start again (from the credential) after a restart.
    call_command("localagents", "stop", stdout=io.StringIO())
    assert _agents_of(plane_id) == []
    assert (base / "credential.json").exists()
    before = AgentPresence.objects.get(compute_plane_id=plane_id).heartbeat_sent_at
    call_command("localagents", "start", stdout=io.StringIO())
    (_again,) = _agents_of(plane_id)
    _wait(
        lambda: AgentPresence.objects.get(compute_plane_id=plane_id).heartbeat_sent_at > before,
        "a heartbeat from the restarted agent",
    )

    deleted = owner.client.delete(_url(owner, f"/{plane_id}"))
    assert deleted.status_code == 202, deleted.content
    op = owner.client.get(deleted["Location"]).json()
    assert op["status"] == "succeeded", op
    assert op["steps"][0]["name"] == "stop_agent"
    assert _agents_of(plane_id) == []
    assert not base.exists()


def test_an_agent_that_never_registers_fails_the_operation(
    owner, verified_account, local_agents, settings
):
    # Nothing listens on the discard port: the agent cannot register.
    settings.LAKEPLANE_PUBLIC_URL = "http://127.0.0.1:9"
    settings.LAKEPLANE_AGENT_CONNECT_MAX_POLLS = 2
    response = owner.client.post(_url(owner), _body(verified_account), format="json")
    plane_id = response.json()["id"]
    op = owner.client.get(response["Location"]).json()
    assert op["status"] == "failed"
    assert op["error"]["code"] == "agent_not_connected", op
    wait = next(s for s in op["steps"] if s["name"] == "wait_for_agent")
    assert wait["status"] == "failed"
    plane = ComputePlane.objects.get(pk=plane_id)
    assert (plane.status, plane.agent_status) == ("failed", "pending")
