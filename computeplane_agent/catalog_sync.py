"""Which catalog version is live on each cluster, and Trino's dynamic catalog statements.

Trino: the agent keeps, per cluster, the ``CREATE CATALOG`` statement it last ran successfully for
each catalog name. Once the coordinator is ready, any catalog whose statement differs is dropped
and created again, a detached one is dropped; the change is live when its statements succeeded —
no pod restarts. The record lives in memory: after an agent restart every catalog is re-created
once (idempotent: ``DROP CATALOG IF EXISTS`` then ``CREATE``). A coordinator that restarts seeds
its catalogs from the rendered ConfigMap, which always holds the latest version.

Trino has no statement that changes a catalog in place (``CREATE``/``DROP CATALOG`` are the
whole dynamic-catalog API), so a change is a drop and a create, and between the two the catalog
is absent for *new* queries; queries already running keep the catalog they started with (Trino:
"dropping a catalog does not interrupt any running queries that use it"). The gap is kept as
small as the engine allows: both statements are rendered before the drop and sent back to back
in one call for that catalog alone — nothing else runs between them — and catalogs that did not
change are never touched. If the new ``CREATE`` fails (a property Trino refuses), the previous
version is created again at once, so a bad change leaves the old catalog serving and the change
reported ``failed``, never a missing catalog.

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
from computeplane_agent.render.catalogs import (
    cached_count,
    create_catalog_statement,
    drop_catalog_statement,
)
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
        # (cluster id, catalog name) -> a version whose CREATE the coordinator refused while the
        # previous one could be restored: not tried again (each try would drop the serving
        # catalog) until the catalog changes again.
        self.refused: dict[tuple[str, str], tuple[str, int, str]] = {}

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
                for key in [k for k in self.refused if k[0] == cluster_id]:
                    del self.refused[key]
        for cluster in desired.clusters:
            if cluster.engine != "trino" or cluster.state != "running":
                continue
            if not self._coordinator_ready(cluster):
                continue
            cache = desired.cache_of(cluster)
            catalogs = desired.catalogs_of(cluster)
            count = cached_count(catalogs, cache)
            wanted = {
                c.name: (c.id, c.version, create_catalog_statement(c, cache, count))
                for c in catalogs
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
            if self.refused.get((cluster.id, name)) == entry:
                continue  # the old version serves; the error stays reported
            catalog_id, _, statement = entry
            previous = applied.get(name)
            # Back to back, already rendered: the catalog is absent only while CREATE runs.
            error = self._run(cluster, [drop_catalog_statement(name), statement])
            if error is None:
                applied[name] = entry
                self.errors.pop((cluster.id, catalog_id), None)
                self.refused.pop((cluster.id, name), None)
                continue
            self.errors[(cluster.id, catalog_id)] = error
            if previous is not None and self._restore(cluster, name, previous):
                applied[name] = previous  # the old version serves; the change stays failed
                self.refused[(cluster.id, name)] = entry
            else:
                applied.pop(name, None)  # dropped or unknown: re-create on the next pass

    def _restore(self, cluster: ClusterSpec, name: str, previous: tuple[str, int, str]) -> bool:
        """After a failed change: the version that worked, back at once (True if it is)."""
        restored = self._run(cluster, [drop_catalog_statement(name), previous[2]]) is None
        if restored:
            log.warning(
                "catalog %s on %s: change refused, version %d restored",
                name,
                cluster.id,
                previous[1],
            )
        return restored

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
