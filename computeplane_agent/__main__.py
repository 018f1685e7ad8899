"""``python -m computeplane_agent run`` | ``gateway --config FILE`` | ``install-manifests``."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import yaml

from computeplane_agent import __version__
from computeplane_agent.agent import Agent, AgentState
from computeplane_agent.client import HttpControlPlaneClient
from computeplane_agent.contract import (
    WORKLOAD_NAMESPACE,
    AgentCredential,
    GatewaySpec,
    Registration,
)
from computeplane_agent.gateway.server import AppThread
from computeplane_agent.install import AGENT_LISTEN_PORT, DEFAULT_IMAGE, install_manifests
from computeplane_agent.listener import Listener
from computeplane_agent.metrics import DEFAULT_METRICS_PORT, AgentMetrics
from computeplane_agent.render.gateway import DEFAULT_AGENT_URL, GatewayEnvironment
from computeplane_agent.targets.base import Target


class ConfigError(Exception):
    """A required setting is missing or invalid: the agent refuses to start."""


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} is required")
    return value


def make_target(kind: str) -> Target:
    if kind == "directory":
        from computeplane_agent.targets.directory import DirectoryTarget

        return DirectoryTarget(
            _env("LAKEPLANE_DIRECTORY_ROOT"),
            kubernetes_version=_env("LAKEPLANE_KUBERNETES_VERSION", "1.31"),
        )
    if kind == "kubernetes":
        from computeplane_agent.targets.kubernetes import KubernetesTarget, load_api_client

        return KubernetesTarget(
            load_api_client(os.environ.get("LAKEPLANE_KUBECONFIG") or None),
            namespaces=(WORKLOAD_NAMESPACE,),
        )
    raise ConfigError(f"LAKEPLANE_TARGET must be kubernetes or directory, not {kind!r}")


def load_credential(client: HttpControlPlaneClient, credential_file: Path) -> AgentCredential:
    """The stored credential, or a new one for the one-time bootstrap token (then stored)."""
    if credential_file.exists():
        return AgentCredential.model_validate_json(credential_file.read_text())
    credential = client.register(
        Registration(
            bootstrap_token=_env("LAKEPLANE_BOOTSTRAP_TOKEN"),
            agent_version=__version__,
            kubernetes_version=_env("LAKEPLANE_KUBERNETES_VERSION", "unknown"),
        )
    )
    credential_file.parent.mkdir(parents=True, exist_ok=True)
    credential_file.write_text(credential.model_dump_json())
    credential_file.chmod(0o600)
    return credential


def gateway_key(credential: str) -> bytes:
    """The gateway replicas' URI-signing key, derived from the agent's credential: the same after
    an agent restart (follow-ups of running queries still verify), new with a new credential."""
    return (
        hmac.new(credential.encode(), b"lakeplane-gateway-uri-key-v1", hashlib.sha256)
        .hexdigest()
        .encode()
    )


def start_listener(
    client: HttpControlPlaneClient, agent_id: str, state: Callable[[], AgentState]
) -> tuple[AppThread, str]:
    """The listener the gateway posts wakes and query records to; returns it and its address
    as the gateway should use it (``LAKEPLANE_AGENT_URL``, else the bound loopback address when
    listening on 127.0.0.1 — the sandbox —, else the in-cluster Service)."""
    host, _, port = _env("LAKEPLANE_AGENT_LISTEN", f"0.0.0.0:{AGENT_LISTEN_PORT}").rpartition(":")

    def applied_gateway() -> GatewaySpec | None:
        applied = state().applied
        return applied.gateway if applied is not None else None

    listener = Listener(client, agent_id=agent_id, gateway=applied_gateway)
    thread = AppThread(listener.app(), name="agent-listener", host=host, port=int(port))
    url = os.environ.get("LAKEPLANE_AGENT_URL") or (
        f"http://127.0.0.1:{thread.port}" if host == "127.0.0.1" else DEFAULT_AGENT_URL
    )
    return thread, url


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    url = _env("LAKEPLANE_CONTROL_PLANE_URL")
    target = make_target(_env("LAKEPLANE_TARGET", "kubernetes"))
    poll_seconds = int(_env("LAKEPLANE_POLL_SECONDS", "30"))
    client = HttpControlPlaneClient(url)
    credential = load_credential(client, Path(_env("LAKEPLANE_CREDENTIAL_FILE")))
    client.credential = credential.credential
    from computeplane_agent.secrets import AwsSecretResolver

    # The agent's own credentials (its IAM role on EKS; AWS_ENDPOINT_URL in the sandbox).
    metrics = AgentMetrics()
    metrics_port = int(_env("LAKEPLANE_METRICS_PORT", str(DEFAULT_METRICS_PORT)))
    if metrics_port:
        metrics.serve(metrics_port)
    # Its own client: the listener's thread must not share the loop's HTTP session.
    reports = HttpControlPlaneClient(url, credential=credential.credential)
    _listener, agent_url = start_listener(reports, credential.agent_id, lambda: agent.state)
    agent = Agent(
        client,
        target,
        agent_id=credential.agent_id,
        poll_seconds=poll_seconds,
        resolver=AwsSecretResolver(),
        metrics=metrics,
        gateway=GatewayEnvironment(
            image=_env("LAKEPLANE_GATEWAY_IMAGE", DEFAULT_IMAGE), agent_url=agent_url
        ),
        gateway_key=gateway_key(credential.credential),
    )
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        if client.long_polling:
            # Idle, waiting for the next desired state: end now instead of after the long poll
            # (up to its wait). Mid-pass the agent finishes the pass and stops between passes.
            raise _Stopped

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with contextlib.suppress(_Stopped):
        agent.run(stop)
    return 0


class _Stopped(BaseException):
    """Raised by the stop signal into an idle long poll."""


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["gateway"]:
        # The same image runs the gateway (render/gateway.py): its own arguments follow.
        from computeplane_agent.gateway.__main__ import main as gateway_main

        gateway_main(args_in[1:])
        return 0
    parser = argparse.ArgumentParser(prog="computeplane_agent")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the agent (configured from LAKEPLANE_* env vars)")
    commands.add_parser("gateway", help="run the query gateway (--config FILE; see --help)")
    manifests = commands.add_parser("install-manifests", help="print the agent's install YAML")
    manifests.add_argument("--control-plane-url", required=True)
    manifests.add_argument("--bootstrap-token", default="")
    manifests.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args(args_in)
    try:
        if args.command == "run":
            return run()
        objects = install_manifests(
            control_plane_url=args.control_plane_url,
            bootstrap_token=args.bootstrap_token,
            image=args.image,
        )
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
