"""Everything that differs between PrestoDB and Trino, in one place.

The renderer asks an ``EngineProfile`` for paths, property names and headers and never branches on
the engine itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from computeplane_agent.versions import Engine

HTTP_PORT = 8080
# The user the preStop hook acts as when it asks a worker to shut down (Trino's access control
# must allow it to write system information; see ``worker_files``).
SHUTDOWN_USER = "lakeplane-shutdown"


@dataclass(frozen=True)
class EngineProfile:
    engine: Engine
    config_dir: str
    # Header naming the user on the HTTP API (X-Presto-User / X-Trino-User).
    user_header: str
    # Root logger name in log.properties.
    log_root: str
    # Extra coordinator properties: PrestoDB runs an embedded discovery server only when asked;
    # Trino always embeds it and rejects the property.
    coordinator_properties: dict[str, str] = field(default_factory=dict)
    # PrestoDB still separates user and total memory limits; Trino removed the "total" ones (369).
    has_total_memory_limits: bool = False
    # Trino's default system access control refuses the graceful-shutdown call, so workers get a
    # file-based rule that lets only SHUTDOWN_USER write system information.
    worker_needs_shutdown_rule: bool = False
    # Trino manages catalogs dynamically (CREATE/DROP CATALOG, no restart). The coordinator keeps
    # them in a file store on a writable emptyDir seeded from the catalog ConfigMap at start;
    # workers receive catalogs from the coordinator and must not name a store.
    coordinator_catalog_properties: dict[str, str] = field(default_factory=dict)
    worker_catalog_properties: dict[str, str] = field(default_factory=dict)

    @property
    def catalog_dir(self) -> str:
        return f"{self.config_dir}/catalog"


PROFILES: dict[Engine, EngineProfile] = {
    "presto": EngineProfile(
        engine="presto",
        config_dir="/opt/presto-server/etc",
        user_header="X-Presto-User",
        log_root="com.facebook.presto",
        coordinator_properties={"discovery-server.enabled": "true"},
        has_total_memory_limits=True,
    ),
    "trino": EngineProfile(
        engine="trino",
        config_dir="/etc/trino",
        user_header="X-Trino-User",
        log_root="io.trino",
        worker_needs_shutdown_rule=True,
        coordinator_catalog_properties={
            "catalog.management": "dynamic",
            "catalog.store": "file",
            "catalog.config-dir": "/etc/trino/catalog",
        },
        worker_catalog_properties={"catalog.management": "dynamic"},
    ),
}
