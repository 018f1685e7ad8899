"""The narrow interface between the agent's loop and wherever objects are applied.

Four object operations (plus two narrow calls: catalog statements for Trino's dynamic catalogs
and an Alluxio master's usage), so the real Kubernetes adapter stays thin and the in-memory and
directory targets can stand in for it (DESIGN.md "Choices already made").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from computeplane_agent.coordinator import CoordinatorLoad

KubeObject = dict[str, Any]

# The agent stamps every object it applies with a hash of its desired content, so a reconcile can
# tell — from the target alone, even after a restart — which objects need no write.
APPLIED_HASH_ANNOTATION = "lakeplane.io/applied-hash"


class TargetError(Exception):
    """The target refused or failed an operation; the agent backs off and retries."""


class CatalogStatementError(Exception):
    """A Trino coordinator refused or could not be reached for a catalog statement. It concerns
    one cluster only: the agent reports that cluster's catalogs as failed or pending and goes on."""


# Workloads whose readiness counts replicas; a Job is ready once it succeeded.
REPLICATED_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True, order=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectRef:
        metadata = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], metadata.get("namespace"), metadata["name"])

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


@dataclass(frozen=True)
class ManagedObject:
    ref: ObjectRef
    applied_hash: str | None


@dataclass(frozen=True)
class Readiness:
    exists: bool
    ready: bool
    ready_replicas: int = 0
    desired_replicas: int = 0
    message: str | None = None


@dataclass(frozen=True)
class CacheUsage:
    """An Alluxio cache's usage as its master reports it: counts only."""

    bytes_used: int
    bytes_capacity: int
    hit_ratio: float | None = None


def content_hash(obj: KubeObject) -> str:
    """Hash of an object's desired content, ignoring the hash annotation itself."""
    clean = json.loads(json.dumps(obj))
    clean.get("metadata", {}).get("annotations", {}).pop(APPLIED_HASH_ANNOTATION, None)
    if clean.get("metadata", {}).get("annotations") == {}:
        del clean["metadata"]["annotations"]
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:32]


def with_applied_hash(obj: KubeObject) -> KubeObject:
    stamped = json.loads(json.dumps(obj))
    annotations = stamped["metadata"].setdefault("annotations", {})
    annotations[APPLIED_HASH_ANNOTATION] = content_hash(obj)
    return stamped


class Target(Protocol):
    name: str

    def apply(self, objects: Sequence[KubeObject]) -> None:
        """Server-side apply: create or update each object as the ``lakeplane-agent`` field
        manager, taking ownership of conflicting fields."""

    def list_managed(self) -> list[ManagedObject]:
        """Every object labelled ``app.kubernetes.io/managed-by=lakeplane-agent`` in the kinds
        and namespaces the agent manages."""

    def delete(self, ref: ObjectRef) -> None:
        """Delete an object; an object that is already gone is not an error."""

    def readiness(self, ref: ObjectRef) -> Readiness:
        """Whether the object exists and, for workloads, how many replicas are ready (a Job is
        ready once it completed)."""

    def run_catalog_statements(
        self, cluster_id: str, coordinator_service: str, statements: Sequence[str]
    ) -> None:
        """Run ``CREATE``/``DROP CATALOG`` statements, in order, on a Trino cluster's coordinator
        (reached as the Service ``coordinator_service``); raises ``CatalogStatementError``.
        Statements carry ``${ENV:…}`` references, never secret values."""

    def cache_usage(self, cache_id: str, master_url: str) -> CacheUsage | None:
        """Usage reported by an Alluxio master's web endpoint; None when it cannot be read (the
        agent then reports capacity from the spec and zero use)."""

    def coordinator_load(self, cluster_id: str, coordinator_service: str) -> CoordinatorLoad | None:
        """A cluster's load as its coordinator counts it (``/v1/cluster``, ``/v1/node``), read
        through the Service ``coordinator_service``; None when the coordinator does not answer."""

    def gateway_url(self) -> str | None:
        """Where the agent reaches the plane's gateway (its status), None when it cannot."""

    def gateway_endpoint(self) -> str | None:
        """The one address clients use for the plane's gateway, once it has one."""
