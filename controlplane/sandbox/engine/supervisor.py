"""One sandbox engine per running cluster, from what the sandbox's local agent has applied.

In EKS the kubelet runs the pods the agent applies; in the sandbox the agent's directory target
writes the same objects as YAML files, and this supervisor plays the kubelet for coordinators: it
reads those files every half second, with the directory target's own readiness rule, and

- a cluster whose coordinator Deployment has a ready replica gets an engine process
  (``python -m controlplane.sandbox.engine serve``), with the engine and version of its image;
- the engine's worker count follows the worker Deployment's ready replicas (told through the
  engine's control endpoint), so a resize changes how many queries it runs at once;
- a coordinator scaled to 0 (stop, auto-suspend) stops the process; a new engine version
  (upgrade) restarts it; a cluster whose objects are gone (delete) loses its record.

Each cluster's record is ``<manifests>/_engines/<cluster id>.json`` (``DirectoryTarget``'s
``coordinator_url`` reads it): ``url``, ``port``, ``state`` (``running``/``stopped``), ``pid``,
``workers``, ``engine``, ``version``. A cluster gets its port when first seen, stopped or not, and
keeps it across stop and start while it is free, so the address the gateway and the API give out
stays the same. Engines' output goes to ``_engines/<cluster id>.log``. Engines run in their own
sessions: a supervisor killed hard leaves them running, and its successor adopts them by pid.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from computeplane_agent.contract import WORKLOAD_NAMESPACE
from computeplane_agent.render.cluster import LABEL_CLUSTER, LABEL_COMPONENT
from computeplane_agent.targets.base import ObjectRef
from computeplane_agent.targets.directory import ENGINES_DIR, DirectoryTarget
from controlplane.sandbox.engine.gateway import GatewayProcess
from controlplane.sandbox.engine.processes import free_port, is_engine, port_is_free, stop_process

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Wanted:
    engine: str
    version: str | None
    running: bool
    workers: int


def _version(image: Any) -> str | None:
    if not isinstance(image, str) or "@" in image or ":" not in image.rsplit("/", 1)[-1]:
        return None
    return image.rsplit(":", 1)[1]


class Supervisor:
    def __init__(self, manifests: Path, *, python: str = sys.executable) -> None:
        self.root = Path(manifests)
        self.target = DirectoryTarget(self.root)
        self.python = python
        self.dir = self.root / ENGINES_DIR
        self.gateway = GatewayProcess(self.target, python, REPO_ROOT)

    # -- what the agent applied -------------------------------------------------------------

    def wanted(self) -> dict[str, Wanted]:
        found: dict[str, Wanted] = {}
        for path in sorted((self.root / WORKLOAD_NAMESPACE).glob("deployment-*.yaml")):
            try:
                obj = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if not isinstance(obj, dict):
                continue
            labels = obj.get("metadata", {}).get("labels", {})
            if labels.get(LABEL_COMPONENT) != "coordinator" or LABEL_CLUSTER not in labels:
                continue
            ref = ObjectRef.of(obj)
            coordinator = self.target.readiness(ref)
            worker_ref = ObjectRef(
                ref.api_version,
                ref.kind,
                ref.namespace,
                ref.name.replace("-coordinator", "-worker"),
            )
            workers = self.target.readiness(worker_ref)
            containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
            image = containers[0].get("image") if containers else None
            found[labels[LABEL_CLUSTER]] = Wanted(
                engine=labels.get("app.kubernetes.io/name", "trino"),
                version=_version(image),
                running=coordinator.ready and coordinator.ready_replicas > 0,
                workers=workers.ready_replicas if workers.ready else 0,
            )
        return found

    # -- records ------------------------------------------------------------------------------

    def record(self, cluster_id: str) -> dict[str, Any] | None:
        try:
            loaded = json.loads(self.target.engine_record_path(cluster_id).read_text())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def records(self) -> dict[str, dict[str, Any]]:
        out = {}
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            rec = self.record(path.stem)
            if rec is not None:
                out[path.stem] = rec
        return out

    def _write(self, cluster_id: str, rec: dict[str, Any]) -> None:
        path = self.target.engine_record_path(cluster_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(rec, indent=2, sort_keys=True))
        os.replace(tmp, path)

    # -- one pass -----------------------------------------------------------------------------

    def sync_once(self) -> None:
        wanted = self.wanted()
        records = self.records()
        for cluster_id, want in wanted.items():
            self._sync_cluster(cluster_id, want, records.get(cluster_id))
        for cluster_id, rec in records.items():
            if cluster_id not in wanted:  # deleted: its objects are gone
                if is_engine(rec.get("pid")):
                    stop_process(int(rec["pid"]))
                self.target.engine_record_path(cluster_id).unlink(missing_ok=True)
                log.info("cluster %s is gone: engine record removed", cluster_id)
        # After the engines: the gateway's file names their addresses.
        self.gateway.sync()

    def _sync_cluster(self, cluster_id: str, want: Wanted, rec: dict[str, Any] | None) -> None:
        if rec is None:
            port = free_port()
            rec = {"cluster": cluster_id, "port": port, "url": f"http://127.0.0.1:{port}",
                   "state": "stopped", "pid": None, "workers": 0}  # fmt: skip
        alive = is_engine(rec.get("pid"))
        changed = alive and (rec.get("engine"), rec.get("version")) != (want.engine, want.version)
        if alive and (not want.running or changed):
            stop_process(int(rec["pid"]))
            log.info("stopped the engine of %s (pid %s)", cluster_id, rec["pid"])
            alive = False
            rec.update(state="stopped", pid=None)
        if want.running and not alive:
            if not port_is_free(int(rec["port"])):
                rec["port"] = free_port()
                rec["url"] = f"http://127.0.0.1:{rec['port']}"
            rec.update(
                state="running",
                pid=self._spawn(cluster_id, want, int(rec["port"])),
                workers=want.workers,
                engine=want.engine,
                version=want.version,
            )
        elif (
            alive
            and rec.get("workers") != want.workers
            and self._tell(rec["url"], workers=want.workers)
        ):
            rec["workers"] = want.workers
        if not want.running:
            rec.update(state="stopped", pid=None, workers=0)
        if rec != self.record(cluster_id):
            self._write(cluster_id, rec)

    def _spawn(self, cluster_id: str, want: Wanted, port: int) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.python, "-m", "controlplane.sandbox.engine", "serve",
            "--engine", want.engine, "--port", str(port), "--workers", str(want.workers),
            "--cluster-id", cluster_id,
        ]  # fmt: skip
        if want.version:
            args += ["--version", want.version]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "TZ")}
        env.update({"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"})
        with (self.dir / f"{cluster_id}.log").open("ab") as out:
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
        log.info("started the engine of %s on port %s (pid %s)", cluster_id, port, process.pid)
        return process.pid

    def _tell(self, url: str, **knobs: Any) -> bool:
        try:
            resp = requests.post(f"{url}/_lakeplane/engine", json=knobs, timeout=2)
        except requests.RequestException:
            return False  # still starting: the next pass tries again
        return resp.status_code == 200

    def stop_all(self) -> None:
        self.gateway.stop()
        for cluster_id, rec in self.records().items():
            if is_engine(rec.get("pid")):
                stop_process(int(rec["pid"]))
            rec.update(state="stopped", pid=None, workers=0)
            self._write(cluster_id, rec)

    def run_forever(self, interval: float = 0.5, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("sandbox engine supervisor watching %s", self.root)
        try:
            while not stop.is_set():
                try:
                    self.sync_once()
                except Exception:  # one bad pass must not end the supervisor
                    log.exception("engine supervisor pass failed")
                stop.wait(interval)
        finally:
            self.stop_all()
