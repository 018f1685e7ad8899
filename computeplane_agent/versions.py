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
