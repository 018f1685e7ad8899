"""The plane's gateway as one local process, from what the sandbox's local agent applied.

On EKS the agent's gateway Deployment runs two replicas behind an internal load balancer; in the
sandbox the engine supervisor plays the kubelet for it too, as it does for coordinators: while
the directory target holds the gateway Deployment (scaled above 0), one
``python -m computeplane_agent.gateway`` process serves on a loopback port, in front of the
plane's sandbox engines. Its files live in ``<manifests>/_gateway/``:

- ``gateway.json`` — the rendered ConfigMap's ``gateway.json`` with each cluster's coordinator
  Service address replaced by its engine's local address (``_engines/<cluster>.json``), rewritten
  only when it changes; the running process reloads it (no restart), as the replicas on EKS do;
- ``hmac.key`` — the key from the rendered Secret (mode 0600);
- ``record.json`` — ``url``, ``port``, ``pid`` (``DirectoryTarget.gateway_url`` reads it);
- ``gateway.log`` — the process's output.

The port is kept while it is free, so the address ``make run`` prints stays the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from computeplane_agent.contract import WORKLOAD_NAMESPACE
from computeplane_agent.render.gateway import CONFIG_FILE, KEY_SECRET, NAME
from computeplane_agent.targets.directory import GATEWAY_DIR, DirectoryTarget
from controlplane.sandbox.engine.processes import free_port, is_engine, port_is_free, stop_process

log = logging.getLogger(__name__)

MARKER = b"computeplane_agent.gateway"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return loaded if isinstance(loaded, dict) else None


class GatewayProcess:
    def __init__(self, target: DirectoryTarget, python: str, repo_root: Path) -> None:
        self.target = target
        self.python = python
        self.repo_root = repo_root
        self.dir = target.root / GATEWAY_DIR
        self.objects = target.root / WORKLOAD_NAMESPACE

    def record(self) -> dict[str, Any] | None:
        try:
            loaded = json.loads((self.dir / "record.json").read_text())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def _write(self, name: str, text: str, mode: int = 0o644) -> bool:
        """Write ``name`` atomically if its content differs; True when it was written."""
        path = self.dir / name
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return False
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        os.replace(tmp, path)
        return True

    def wanted(self) -> tuple[dict[str, Any], str] | None:
        """The local config document and key, or None when the plane runs no gateway."""
        deployment = _load(self.objects / f"deployment-{NAME}.yaml")
        config_map = _load(self.objects / f"configmap-{NAME}-config.yaml")
        key = _load(self.objects / f"secret-{KEY_SECRET}.yaml")
        if deployment is None or config_map is None or key is None:
            return None
        if int(deployment.get("spec", {}).get("replicas", 0)) < 1:
            return None
        try:
            document = json.loads(config_map["data"][CONFIG_FILE])
            secret = str(key["stringData"]["key"])
        except (KeyError, TypeError, ValueError):
            return None
        for group in document.get("groups", []):
            for cluster in group.get("clusters", []):
                # The engine's address stands in for the coordinator Service (unknown until the
                # supervisor has seen the cluster: the gateway's probes find it down till then).
                cluster["url"] = self.target.coordinator_url(cluster["id"]) or cluster["url"]
        document["listen"] = {"host": "127.0.0.1", "port": 0}
        return document, secret

    def sync(self) -> None:
        """One pass: start, reconfigure (by rewriting its file) or stop the process."""
        wanted = self.wanted()
        rec = self.record() or {}
        running = is_engine(rec.get("pid"), MARKER)
        if wanted is None:
            if running:
                stop_process(int(rec["pid"]), MARKER)
                log.info("the plane's gateway is gone: stopped pid %s", rec["pid"])
            if rec.get("pid"):
                self._write("record.json", json.dumps({**rec, "pid": None}, indent=2))
            return
        document, key = wanted
        self._write("hmac.key", key, 0o600)
        self._write(CONFIG_FILE, json.dumps(document, indent=2, sort_keys=True) + "\n")
        if running:
            return
        port = rec.get("port")
        if not isinstance(port, int) or not port_is_free(port):
            port = free_port()
        rec = {"url": f"http://127.0.0.1:{port}", "port": port, "pid": self._spawn(port)}
        self._write("record.json", json.dumps(rec, indent=2, sort_keys=True))

    def _spawn(self, port: int) -> int:
        args = [
            self.python, "-m", "computeplane_agent.gateway",
            "--config", str(self.dir / CONFIG_FILE), "--host", "127.0.0.1", "--port", str(port),
            "--hmac-key-file", str(self.dir / "hmac.key"),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TZ")}
        env.update({"PYTHONPATH": str(self.repo_root), "PYTHONUNBUFFERED": "1"})
        with (self.dir / "gateway.log").open("ab") as out:
            process = subprocess.Popen(
                args,
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        log.info("started the plane's gateway on port %s (pid %s)", port, process.pid)
        return process.pid

    def stop(self) -> None:
        rec = self.record()
        if rec and is_engine(rec.get("pid"), MARKER):
            stop_process(int(rec["pid"]), MARKER)
        if rec and rec.get("pid"):
            self._write("record.json", json.dumps({**rec, "pid": None}, indent=2, sort_keys=True))
