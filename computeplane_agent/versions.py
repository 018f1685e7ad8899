"""Supported engine versions and their images — the one table the control plane validates against.

Images are pulled from Docker Hub by default; a compute plane may name a registry mirror (e.g. an
ECR pull-through cache in the customer's account), which replaces the registry host and keeps the
repository path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Engine = Literal["presto", "trino"]


class UnsupportedVersion(ValueError):
    """The engine version is not in the supported table."""


@dataclass(frozen=True)
class EngineRelease:
    engine: Engine
    version: str
    repository: str  # without registry host

    def image(self, registry_mirror: str | None = None) -> str:
        registry = registry_mirror or "docker.io"
        return f"{registry}/{self.repository}:{self.version}"


SUPPORTED_VERSIONS: dict[Engine, tuple[str, ...]] = {
    "presto": ("0.289", "0.290", "0.291", "0.292"),
    "trino": ("466", "470", "472", "476"),
}
DEFAULT_VERSIONS: dict[Engine, str] = {"presto": "0.292", "trino": "476"}
_REPOSITORIES: dict[Engine, str] = {"presto": "prestodb/presto", "trino": "trinodb/trino"}


def release(engine: Engine, version: str | None = None) -> EngineRelease:
    chosen = version or DEFAULT_VERSIONS[engine]
    if chosen not in SUPPORTED_VERSIONS[engine]:
        supported = ", ".join(SUPPORTED_VERSIONS[engine])
        raise UnsupportedVersion(f"{engine} {chosen} is not supported (supported: {supported})")
    return EngineRelease(engine, chosen, _REPOSITORIES[engine])


# --- components beside the engines ---------------------------------------------------------
# The Hive standalone metastore (apache/hive images run it with SERVICE_NAME=metastore) and
# Alluxio. Same rules as the engines: one table, a default, a registry mirror replaces the host.
Component = Literal["hive-metastore", "alluxio"]

COMPONENT_VERSIONS: dict[Component, tuple[str, ...]] = {
    "hive-metastore": ("3.1.3", "4.0.1"),
    "alluxio": ("2.9.5",),
}
DEFAULT_COMPONENT_VERSIONS: dict[Component, str] = {"hive-metastore": "4.0.1", "alluxio": "2.9.5"}
_COMPONENT_REPOSITORIES: dict[Component, str] = {
    "hive-metastore": "apache/hive",
    "alluxio": "alluxio/alluxio",
}


@dataclass(frozen=True)
class ComponentRelease:
    component: Component
    version: str
    repository: str

    def image(self, registry_mirror: str | None = None) -> str:
        registry = registry_mirror or "docker.io"
        return f"{registry}/{self.repository}:{self.version}"


def component_release(component: Component, version: str | None = None) -> ComponentRelease:
    chosen = version or DEFAULT_COMPONENT_VERSIONS[component]
    if chosen not in COMPONENT_VERSIONS[component]:
        supported = ", ".join(COMPONENT_VERSIONS[component])
        raise UnsupportedVersion(f"{component} {chosen} is not supported (supported: {supported})")
    return ComponentRelease(component, chosen, _COMPONENT_REPOSITORIES[component])
