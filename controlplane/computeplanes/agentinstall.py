"""Installing a compute plane's agent: a local process in the sandbox, manifests on real EKS.

Sandbox (``LAKEPLANE_AGENT_MODE=sandbox``): one ``python -m computeplane_agent run`` process per
compute plane against the directory target, started detached (its own session) so it outlives
the Celery task that started it and the terminal's Ctrl-C; ``runlakeplane`` stops and restarts
them (``manage.py localagents``). Everything it owns lives under
``LAKEPLANE_LOCAL_AGENTS_DIR/<plane id>/``: ``manifests/`` (the directory target's root),
``credential.json`` (written by the agent after registering), ``agent.pid`` and ``agent.log``.
Next to the agent runs the sandbox engine supervisor (``engines.pid``, ``engines.log``): one
sandbox engine per running cluster, found at ``manifests/_engines/<cluster>.json`` — the
sandbox's counterpart of the coordinator Service (``sandbox_engine_url``; docs/sandbox.md) — and
the plane's gateway process, the counterpart of the gateway's Service (``sandbox_gateway_url``).
The one-time bootstrap token is handed over in the process's environment only. Its AWS identity
is the plane's agent role, never the control plane's: ``aws-config``/``aws-credentials`` there
make boto3's default chain assume that role in the emulator (see :func:`sandbox_aws_environment`).

EKS (``LAKEPLANE_AGENT_MODE=eks``): the agent's own install manifests
(``computeplane_agent.install.install_manifests``) are server-side applied to the plane's EKS
cluster with a bearer token derived from the assumed role; the token sits in the agent's
credential Secret in the customer's cluster, nowhere in Lakeplane.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from computeplane_agent.install import DEFAULT_IMAGE, install_manifests
from computeplane_agent.targets.directory import DirectoryTarget
from computeplane_agent.targets.kubernetes import KubernetesTarget
from controlplane.agentapi.services import issue_bootstrap_token
from controlplane.computeplanes.models import AgentStatus, ComputePlane, ComputePlaneStatus
from controlplane.providers.aws.eks_auth import eks_bearer_token, kubernetes_api_client

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PID_FILE = "agent.pid"
ENGINES_PID_FILE = "engines.pid"
ENGINE_SUPERVISOR_MARKER = b"controlplane.sandbox.engine"
STOP_GRACE_SECONDS = 5.0


def agent_mode() -> str:
    mode = str(settings.LAKEPLANE_AGENT_MODE or "")
    if mode:
        return mode
    return "sandbox" if settings.AWS_ENDPOINT_URL else "eks"


def control_plane_url() -> str:
    return str(settings.LAKEPLANE_PUBLIC_URL).rstrip("/")


# --- sandbox: local agent processes ---------------------------------------------------------
def agents_root() -> Path:
    return Path(settings.LAKEPLANE_LOCAL_AGENTS_DIR)


def agent_dir(plane_id: str) -> Path:
    return agents_root() / plane_id


def credential_file(plane_id: str) -> Path:
    return agent_dir(plane_id) / "credential.json"


def manifests_dir(plane_id: str) -> Path:
    return agent_dir(plane_id) / "manifests"


AGENT_AWS_PROFILE = "lakeplane-agent"
AGENT_AWS_SOURCE_PROFILE = "lakeplane-agent-source"


def sandbox_aws_environment(
    directory: Path, *, endpoint_url: str, region: str, agent_role_arn: str
) -> dict[str, str]:
    """Write the agent's AWS config files into ``directory``; return the environment using them.

    As on EKS, where Pod Identity hands the agent its role: the profile assumes the plane's
    agent role from the emulator's Pod Identity key, and boto3 refreshes the role's
    credentials by itself before they expire.
    """
    from controlplane.sandbox.customers import POD_IDENTITY_ACCESS_KEY_ID

    config = directory / "aws-config"
    credentials = directory / "aws-credentials"
    config.write_text(
        f"[profile {AGENT_AWS_PROFILE}]\n"
        f"role_arn = {agent_role_arn}\n"
        f"source_profile = {AGENT_AWS_SOURCE_PROFILE}\n"
        f"region = {region}\n\n"
        f"[profile {AGENT_AWS_SOURCE_PROFILE}]\n"
        f"region = {region}\n"
    )
    credentials.write_text(
        f"[{AGENT_AWS_SOURCE_PROFILE}]\n"
        f"aws_access_key_id = {POD_IDENTITY_ACCESS_KEY_ID}\n"
        # The emulator ignores the secret; it stands for Pod Identity's own credentials.
        "aws_secret_access_key = sandbox-pod-identity\n"
    )
    credentials.chmod(0o600)
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_PROFILE": AGENT_AWS_PROFILE,
    }


def _is_agent(pid: int, marker: bytes = b"computeplane_agent") -> bool:
    """True if ``pid`` is a live (not zombie) agent process — guards against pid reuse."""
    # Reap it if it is our own child that exited (eager tests, a re-run in the same worker).
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():  # Linux: make sure it is not a zombie or an unrelated process
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        return state != "Z" and marker in cmdline
    return True


def running_pid(plane_id: str) -> int | None:
    """The pid of this plane's local agent if it is alive."""
    try:
        pid = int((agent_dir(plane_id) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_agent(pid) else None


def _base_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        # Local processes get their own settings only: no database URL, Django secret, AWS keys...
        if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "TZ")
    }


def engine_supervisor_pid(plane_id: str) -> int | None:
    try:
        pid = int((agent_dir(plane_id) / ENGINES_PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_agent(pid, ENGINE_SUPERVISOR_MARKER) else None


def start_engine_supervisor(plane_id: str) -> int | None:
    """Start the plane's sandbox engine supervisor unless it runs (or engines are off)."""
    if not settings.LAKEPLANE_SANDBOX_ENGINES:
        return None
    pid = engine_supervisor_pid(plane_id)
    if pid is not None:
        return pid
    base = agent_dir(plane_id)
    env = {**_base_environment(), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    with (base / "engines.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "controlplane.sandbox.engine", "supervise",
             "--manifests", str(manifests_dir(plane_id))],
            cwd=base,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )  # fmt: skip
    (base / ENGINES_PID_FILE).write_text(str(process.pid))
    logger.info("started the engine supervisor of %s (pid %s)", plane_id, process.pid)
    return process.pid


def stop_engine_supervisor(plane_id: str) -> bool:
    """SIGTERM the supervisor (it stops its engines first), SIGKILL if it lingers."""
    pid = engine_supervisor_pid(plane_id)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # It stops each engine (up to a few seconds each), then exits.
        deadline = time.monotonic() + STOP_GRACE_SECONDS * 4
        while time.monotonic() < deadline and _is_agent(pid, ENGINE_SUPERVISOR_MARKER):
            time.sleep(0.1)
        if _is_agent(pid, ENGINE_SUPERVISOR_MARKER):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (agent_dir(plane_id) / ENGINES_PID_FILE).unlink(missing_ok=True)
    return pid is not None


def sandbox_engine_url(plane_id: str, cluster_id: str) -> str | None:
    """In the sandbox, the local address of a cluster's engine (its coordinator); else None (a
    plane on EKS has no local agent directory, so no engine record either)."""
    return DirectoryTarget(manifests_dir(plane_id)).coordinator_url(cluster_id)


def sandbox_gateway_url(plane_id: str) -> str | None:
    """In the sandbox, the local address of the plane's gateway process (the supervisor runs it
    and keeps its port across restarts); else None."""
    return DirectoryTarget(manifests_dir(plane_id)).gateway_url()


def start_local_agent(plane: ComputePlane, bootstrap_token: str | None) -> int:
    """Start the plane's agent detached; returns its pid. Without a token it must have a
    credential file already (a restart)."""
    base = agent_dir(plane.pk)
    manifests_dir(plane.pk).mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)  # the credential file lands here
    env = _base_environment()
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "LAKEPLANE_CONTROL_PLANE_URL": control_plane_url(),
            "LAKEPLANE_TARGET": "directory",
            "LAKEPLANE_DIRECTORY_ROOT": str(manifests_dir(plane.pk)),
            "LAKEPLANE_CREDENTIAL_FILE": str(credential_file(plane.pk)),
            "LAKEPLANE_KUBERNETES_VERSION": plane.kubernetes_version,
            "LAKEPLANE_POLL_SECONDS": str(settings.LAKEPLANE_AGENT_MAX_WAIT_SECONDS),
            # The listener the plane's gateway process posts wakes and query records to: a free
            # loopback port; the agent writes its address into the gateway's config.
            "LAKEPLANE_AGENT_LISTEN": "127.0.0.1:0",
        }
    )
    agent_role_arn = (plane.resources or {}).get("agent_role_arn")
    if settings.AWS_ENDPOINT_URL and agent_role_arn:
        env.update(
            sandbox_aws_environment(
                base,
                endpoint_url=str(settings.AWS_ENDPOINT_URL),
                region=plane.region,
                agent_role_arn=agent_role_arn,
            )
        )
    else:
        # No role yet: catalogs with secrets fail to resolve, visibly, rather than the agent
        # falling back on whatever AWS identity the host has (~/.aws, instance metadata).
        env.update(
            {
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        logger.warning("the local agent of %s starts without an AWS identity", plane.pk)
    if bootstrap_token:
        env["LAKEPLANE_BOOTSTRAP_TOKEN"] = bootstrap_token
    with (base / "agent.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "computeplane_agent", "run"],
            cwd=base,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the Celery task and the terminal's Ctrl-C
            close_fds=True,
        )
    (base / PID_FILE).write_text(str(process.pid))
    logger.info("started the local agent of %s (pid %s)", plane.pk, process.pid)
    start_engine_supervisor(plane.pk)
    return process.pid


def stop_local_agent(plane_id: str, *, remove: bool = False) -> bool:
    """Stop the plane's agent (SIGTERM, then SIGKILL) and its engines; ``remove`` deletes its
    directory too."""
    stop_engine_supervisor(plane_id)
    pid = running_pid(plane_id)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = None
    if pid is not None:
        # The agent stops between passes; a long poll in flight may hold it, so don't wait long.
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and _is_agent(pid):
            time.sleep(0.1)
        if _is_agent(pid):
            os.kill(pid, signal.SIGKILL)
            while _is_agent(pid):
                time.sleep(0.05)
        logger.info("stopped the local agent of %s (pid %s)", plane_id, pid)
    (agent_dir(plane_id) / PID_FILE).unlink(missing_ok=True)
    if remove:
        shutil.rmtree(agent_dir(plane_id), ignore_errors=True)
    return pid is not None


def install_sandbox_agent(plane: ComputePlane) -> str:
    """Idempotent: an alive agent is left alone; a registered one is restarted from its
    credential; otherwise a fresh bootstrap token is issued and handed to a new process."""
    pid = running_pid(plane.pk)
    if pid is not None:
        start_engine_supervisor(plane.pk)
        return f"the local agent is already running (pid {pid})"
    if credential_file(plane.pk).exists():
        pid = start_local_agent(plane, None)
        return f"restarted the registered local agent (pid {pid})"
    token = issue_bootstrap_token(plane)
    pid = start_local_agent(plane, token)
    return f"started the local agent (pid {pid}) with a one-time bootstrap token"


def start_registered_agents() -> list[str]:
    """Restart the agents of ready sandbox planes that have registered (``runlakeplane``)."""
    started = []
    planes = ComputePlane.objects.filter(status=ComputePlaneStatus.READY, deleted_at__isnull=True)
    for plane in planes:
        if credential_file(plane.pk).exists() and running_pid(plane.pk) is None:
            start_local_agent(plane, None)
            started.append(plane.pk)
    return started


def stop_all_local_agents() -> list[str]:
    """Stop every local agent under the agents' directory (their files stay for a restart)."""
    root = agents_root()
    stopped = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and stop_local_agent(child.name):
                stopped.append(child.name)
    return stopped


# --- eks: the agent's manifests through the Kubernetes API ----------------------------------
def install_eks_agent(plane: ComputePlane, clients: Callable[[str], Any]) -> str:
    """Apply the agent's install objects to the plane's cluster (server-side apply: a re-run
    converges). ``clients`` builds boto3 clients acting as the customer's role."""
    if plane.agent_status == AgentStatus.CONNECTED:
        return "the agent has already registered"
    name = plane.resources["eks_cluster_name"]
    cluster = clients("eks").describe_cluster(name=name)["cluster"]
    endpoint = plane.resources.get("eks_endpoint") or cluster["endpoint"]
    token = eks_bearer_token(clients("sts"), name)
    api = kubernetes_api_client(
        endpoint, (cluster.get("certificateAuthority") or {}).get("data"), token
    )
    bootstrap_token = issue_bootstrap_token(plane)
    objects = install_manifests(
        control_plane_url=control_plane_url(),
        bootstrap_token=bootstrap_token,
        image=settings.LAKEPLANE_AGENT_IMAGE or DEFAULT_IMAGE,
    )
    # Same field manager as the agent: it owns these objects once it runs.
    KubernetesTarget(api).apply(objects)
    return f"applied {len(objects)} agent objects to {endpoint}"
