"""Which catalog version is live on each cluster, and Trino's dynamic catalog statements.

Trino: the agent keeps, per cluster, the ``CREATE CATALOG`` statement it last ran successfully for
each catalog name. Once the coordinator is ready, any catalog whose statement differs is dropped
and created again, a detached one is dropped; the change is live when its statements succeeded —
no pod restarts. The record lives in memory: after an agent restart every catalog is re-created
once (idempotent: ``DROP CATALOG IF EXISTS`` then ``CREATE``). A coordinator that restarts seeds
its catalogs from the rendered ConfigMap, which always holds the latest version.

PrestoDB: a catalog change is a rolling restart of the cluster's pods (the pod templates carry a
checksum of the catalog files); it is live once the rollout completed — every Deployment of the
cluster reports its updated pods ready.
"""

from __future__ import annotations

import logging

from computeplane_agent.contract import (
    WORKLOAD_NAMESPACE,
    CatalogStatus,
    ClusterSpec,
    DesiredState,
)
from computeplane_agent.render.catalogs import create_catalog_statement, drop_catalog_statement
from computeplane_agent.render.cluster import resource_prefix
from computeplane_agent.secrets import Redactor, SecretObjects
from computeplane_agent.targets.base import CatalogStatementError, ObjectRef, Target

log = logging.getLogger("computeplane_agent")

# catalog name -> (catalog id, version, the CREATE statement that made it)
_Applied = dict[str, tuple[str, int, str]]


class CatalogSync:
    def __init__(self, target: Target, redactor: Redactor) -> None:
        self.target = target
        self.redactor = redactor
        self.trino: dict[str, _Applied] = {}
        self.errors: dict[tuple[str, str], str] = {}  # (cluster id, catalog id) -> message
        self.presto_live: dict[tuple[str, str], int] = {}

    @staticmethod
    def coordinator_service(cluster: ClusterSpec) -> str:
        return f"{resource_prefix(cluster.id)}-coordinator"

    def _coordinator_ready(self, cluster: ClusterSpec) -> bool:
        name = self.coordinator_service(cluster)
        ref = ObjectRef("apps/v1", "Deployment", WORKLOAD_NAMESPACE, name)
        readiness = self.target.readiness(ref)
        return readiness.ready and readiness.ready_replicas > 0

    def sync(self, desired: DesiredState, secrets: SecretObjects | None) -> None:
        """Bring every ready Trino coordinator's catalogs to the desired versions."""
        failed = secrets.catalog_failures if secrets else {}
        running = {c.id for c in desired.clusters if c.state == "running"}
        for cluster_id in list(self.trino):
            if cluster_id not in running:
                # Stopped or gone: a new coordinator seeds itself from the ConfigMap.
                del self.trino[cluster_id]
        for cluster in desired.clusters:
            if cluster.engine != "trino" or cluster.state != "running":
                continue
            if not self._coordinator_ready(cluster):
                continue
            cache = desired.cache_of(cluster)
            wanted = {
                c.name: (c.id, c.version, create_catalog_statement(c, cache))
                for c in desired.catalogs_of(cluster)
                if c.id not in failed
            }
            self._apply(cluster, wanted)

    def _run(self, cluster: ClusterSpec, statements: list[str]) -> str | None:
        try:
            self.target.run_catalog_statements(
                cluster.id, self.coordinator_service(cluster), statements
            )
        except CatalogStatementError as exc:
            message = self.redactor.redact(str(exc))[:1000]
            log.warning("catalog statement on %s failed: %s", cluster.id, message)
            return message
        return None

    def _apply(self, cluster: ClusterSpec, wanted: _Applied) -> None:
        applied = self.trino.setdefault(cluster.id, {})
        for name in sorted(set(applied) - set(wanted)):
            if self._run(cluster, [drop_catalog_statement(name)]) is None:
                del applied[name]
        for name, entry in sorted(wanted.items()):
            if applied.get(name) == entry:
                continue
            catalog_id, _, statement = entry
            error = self._run(cluster, [drop_catalog_statement(name), statement])
            if error is None:
                applied[name] = entry
                self.errors.pop((cluster.id, catalog_id), None)
            else:
                applied.pop(name, None)  # dropped or unknown: re-create on the next pass
                self.errors[(cluster.id, catalog_id)] = error

    def statuses(
        self,
        desired: DesiredState,
        cluster: ClusterSpec,
        secrets: SecretObjects | None,
        *,
        rolled_out: bool,
    ) -> list[CatalogStatus]:
        failed = secrets.catalog_failures if secrets else {}
        applied = self.trino.get(cluster.id, {})
        out = []
        for catalog in desired.catalogs_of(cluster):
            key = (cluster.id, catalog.id)
            if cluster.engine == "trino":
                entry = applied.get(catalog.name)
                live = entry[1] if entry and entry[0] == catalog.id else 0
            else:
                if rolled_out and catalog.id not in failed:
                    self.presto_live[key] = catalog.version
                live = self.presto_live.get(key, 0)
            message = failed.get(catalog.id) or self.errors.get(key)
            if message:
                status = CatalogStatus(
                    id=catalog.id, version=live, status="failed", message=message[:2000]
                )
            elif live == catalog.version:
                status = CatalogStatus(id=catalog.id, version=live, status="live")
            else:
                status = CatalogStatus(id=catalog.id, version=live, status="pending")
            out.append(status)
        return out
