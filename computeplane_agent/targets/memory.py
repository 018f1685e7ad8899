"""An in-memory target: the agent's apply logic is tested against it (it counts every write)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from computeplane_agent.coordinator import CoordinatorLoad
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
)

MANAGED_BY = ("app.kubernetes.io/managed-by", "lakeplane-agent")


class MemoryTarget:
    name = "memory"

    def __init__(self) -> None:
        self.objects: dict[ObjectRef, KubeObject] = {}
        self.writes = 0  # applies + deletes
        self.applied: list[ObjectRef] = []
        self.deleted: list[ObjectRef] = []
        # Workloads named here report fewer ready replicas than desired (a pod that will not
        # start); every other Deployment is ready as soon as it is applied.
        self.unready: dict[ObjectRef, int] = {}
        self.fail_next: int = 0
        # Trino catalog statements per cluster, in the order they ran; clusters named in
        # ``refuse_statements`` answer with an error instead.
        self.statements: dict[str, list[str]] = {}
        self.refuse_statements: set[str] = set()
        # Statements containing any of these texts fail (Trino refusing one CREATE CATALOG); the
        # statements before it in the same call have run, as on a real coordinator.
        self.refuse_containing: set[str] = set()
        self.usage: dict[str, CacheUsage] = {}  # cache id -> what its master reports
        # cluster id -> what its coordinator answers (absent: it does not answer); every read
        # is counted, as a test of the loop's cost wants.
        self.loads: dict[str, CoordinatorLoad] = {}
        self.load_reads = 0

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise TargetError("injected failure")

    def apply(self, objects: Sequence[KubeObject]) -> None:
        for obj in objects:
            self._maybe_fail()
            ref = ObjectRef.of(obj)
            self.objects[ref] = copy.deepcopy(obj)
            self.writes += 1
            self.applied.append(ref)

    def list_managed(self) -> list[ManagedObject]:
        return [
            ManagedObject(ref, obj["metadata"].get("annotations", {}).get(APPLIED_HASH_ANNOTATION))
            for ref, obj in sorted(self.objects.items())
            if obj["metadata"].get("labels", {}).get(MANAGED_BY[0]) == MANAGED_BY[1]
        ]

    def delete(self, ref: ObjectRef) -> None:
        self._maybe_fail()
        if self.objects.pop(ref, None) is not None:
            self.writes += 1
            self.deleted.append(ref)

    def readiness(self, ref: ObjectRef) -> Readiness:
        obj = self.objects.get(ref)
        if obj is None:
            return Readiness(exists=False, ready=False)
        if ref.kind == "Job":
            return Readiness(True, ref not in self.unready)
        if ref.kind not in REPLICATED_KINDS:
            return Readiness(exists=True, ready=True)
        desired = int(obj["spec"].get("replicas", 1))
        ready = min(desired, self.unready.get(ref, desired))
        return Readiness(True, ready == desired, ready, desired)

    def run_catalog_statements(
        self, cluster_id: str, coordinator_service: str, statements: Sequence[str]
    ) -> None:
        if cluster_id in self.refuse_statements:
            raise CatalogStatementError("coordinator refused the statement")
        ran = self.statements.setdefault(cluster_id, [])
        for statement in statements:
            if any(text in statement for text in self.refuse_containing):
                raise CatalogStatementError(f"Catalog property is invalid: {statement[:40]}")
            ran.append(statement)

    def cache_usage(self, cache_id: str, master_url: str) -> CacheUsage | None:
        return self.usage.get(cache_id)

    def coordinator_load(self, cluster_id: str, coordinator_service: str) -> CoordinatorLoad | None:
        self.load_reads += 1
        return self.loads.get(cluster_id)

    def gateway_url(self) -> str | None:
        return None  # nothing runs: no gateway to ask

    def gateway_endpoint(self) -> str | None:
        return None
