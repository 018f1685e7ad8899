"""The sandbox target: one YAML file per object under a root directory.

It is what the sandbox runs instead of a live Kubernetes API, and a readable record of exactly what
the agent would apply in EKS (also usable for review or GitOps). An object is "ready" once it passes
strict schema validation for the configured Kubernetes version, so a manifest the API server would
reject never looks healthy here either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from computeplane_agent.coordinator import CoordinatorLoad, read_load
from computeplane_agent.targets.base import (
    APPLIED_HASH_ANNOTATION,
    REPLICATED_KINDS,
    CacheUsage,
    CatalogStatementError,
    KubeObject,
    ManagedObject,
    ObjectRef,
    Readiness,
    TargetError,
    content_hash,
)

CLUSTER_SCOPED_DIR = "_cluster"
# Trino catalog statements the agent would run, one file per cluster (not YAML: never an object).
STATEMENTS_DIR = "_catalog-statements"
# Where the sandbox's engine supervisor records each cluster's local coordinator (one JSON file per
# cluster: url, state, workers, pid); the sandbox's stand-in for the coordinator Service's address.
ENGINES_DIR = "_engines"
# The sandbox's stand-in for the gateway's Service (controlplane/sandbox/engine/gateway.py).
GATEWAY_DIR = "_gateway"


class DirectoryTarget:
    name = "directory"

    def __init__(self, root: Path | str, *, kubernetes_version: str = "1.31") -> None:
        self.root = Path(root)
        self.kubernetes_version = kubernetes_version
        self._validated: dict[str, str | None] = {}  # content hash -> error (None when valid)

    def path_of(self, ref: ObjectRef) -> Path:
        folder = ref.namespace or CLUSTER_SCOPED_DIR
        return self.root / folder / f"{ref.kind.lower()}-{ref.name}.yaml"

    def apply(self, objects: Sequence[KubeObject]) -> None:
        for obj in objects:
            path = self.path_of(ObjectRef.of(obj))
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader (or a crash) never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".yaml")
            try:
                with os.fdopen(fd, "w") as handle:
                    yaml.safe_dump(obj, handle, sort_keys=False)
                os.replace(tmp, path)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                raise TargetError(f"cannot write {path}: {exc}") from exc

    def _load(self, path: Path) -> KubeObject | None:
        try:
            loaded: Any = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def list_managed(self) -> list[ManagedObject]:
        found: list[ManagedObject] = []
        if not self.root.exists():
            return found
        for path in sorted(self.root.glob("*/*.yaml")):
            obj = self._load(path)
            if obj is None:
                continue
            metadata = obj.get("metadata", {})
            if metadata.get("labels", {}).get("app.kubernetes.io/managed-by") != "lakeplane-agent":
                continue
            applied = metadata.get("annotations", {}).get(APPLIED_HASH_ANNOTATION)
            found.append(ManagedObject(ObjectRef.of(obj), applied))
        return found

    def delete(self, ref: ObjectRef) -> None:
        try:
            self.path_of(ref).unlink(missing_ok=True)
        except OSError as exc:
            raise TargetError(f"cannot delete {ref}: {exc}") from exc

    def _validation_error(self, obj: KubeObject) -> str | None:
        key = content_hash(obj)
        if key not in self._validated:
            # Imported here: only the sandbox target needs the schemas (a large package).
            import kubernetes_validate

            try:
                kubernetes_validate.validate(obj, self.kubernetes_version, strict=True)
                self._validated[key] = None
            except kubernetes_validate.ValidationError as exc:
                self._validated[key] = f"invalid: {exc.message}"[:500]
            except kubernetes_validate.SchemaNotFoundError as exc:
                self._validated[key] = exc.message[:500]
        return self._validated[key]

    def readiness(self, ref: ObjectRef) -> Readiness:
        obj = self._load(self.path_of(ref))
        if obj is None:
            return Readiness(exists=False, ready=False)
        error = self._validation_error(obj)
        if error:
            return Readiness(True, False, message=error)
        replicated = ref.kind in REPLICATED_KINDS
        desired = int(obj.get("spec", {}).get("replicas", 1)) if replicated else 0
        return Readiness(True, True, desired, desired)

    def statements_path(self, cluster_id: str) -> Path:
        return self.root / STATEMENTS_DIR / f"{cluster_id}.sql"

    def run_catalog_statements(
        self, cluster_id: str, coordinator_service: str, statements: Sequence[str]
    ) -> None:
        """Append the statements to the cluster's file: the sandbox shows what would run."""
        path = self.statements_path(cluster_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.writelines(f"{statement};\n" for statement in statements)
        except OSError as exc:
            raise CatalogStatementError(f"cannot write {path}: {exc}") from exc

    def cache_usage(self, cache_id: str, master_url: str) -> CacheUsage | None:
        return None  # no Alluxio runs here: the agent reports capacity from the spec

    def coordinator_load(self, cluster_id: str, coordinator_service: str) -> CoordinatorLoad | None:
        """The sandbox engine standing in for the coordinator answers the same endpoints."""
        url = self.coordinator_url(cluster_id)
        return read_load(url) if url is not None else None

    def engine_record_path(self, cluster_id: str) -> Path:
        return self.root / ENGINES_DIR / f"{cluster_id}.json"

    def gateway_url(self) -> str | None:
        """The local address standing in for the plane's gateway Service, once the sandbox
        supervisor runs the gateway; else None."""
        try:
            record = json.loads((self.root / GATEWAY_DIR / "record.json").read_text())
        except (OSError, ValueError):
            return None
        url = record.get("url") if isinstance(record, dict) else None
        return url if isinstance(url, str) and url else None

    def gateway_endpoint(self) -> str | None:
        return self.gateway_url()  # the same loopback address for the agent and for clients

    def coordinator_url(self, cluster_id: str) -> str | None:
        """The local address standing in for a cluster's coordinator Service, once the sandbox
        engine supervisor has given it one (it keeps it across stop and start); else None."""
        try:
            record = json.loads(self.engine_record_path(cluster_id).read_text())
        except (OSError, ValueError):
            return None
        url = record.get("url") if isinstance(record, dict) else None
        return url if isinstance(url, str) and url else None
