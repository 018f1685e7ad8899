"""Rendering desired state into Kubernetes objects (plain dicts, in apply order)."""

from __future__ import annotations

from collections.abc import Collection

from computeplane_agent.contract import DesiredState
from computeplane_agent.install import DEFAULT_IMAGE
from computeplane_agent.render.alluxio import render_cache
from computeplane_agent.render.cluster import (
    LABEL_CLUSTER,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    KubeObject,
    render_cluster,
    resource_prefix,
)
from computeplane_agent.render.gateway import GatewayEnvironment, render_gateway
from computeplane_agent.render.metastore import render_metastore

__all__ = [
    "LABEL_CLUSTER",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "GatewayEnvironment",
    "KubeObject",
    "render_cache",
    "render_cluster",
    "render_desired_state",
    "render_gateway",
    "render_metastore",
    "resource_prefix",
]


def render_desired_state(
    state: DesiredState,
    *,
    unavailable_catalogs: Collection[str] = (),
    gateway: GatewayEnvironment | None = None,
) -> list[KubeObject]:
    """Every object the agent should have applied for this desired state, except the Secrets
    (the agent writes those from values it resolves).

    Metastores and caches come first and depend on no cluster: a cluster going away never takes
    them along. ``unavailable_catalogs`` (ids) are left out of every cluster — a catalog whose
    secret cannot be read must not break a cluster's start-up. The gateway (when the plane has one
    enabled) comes last; ``gateway`` says which image runs it and where it reaches the agent.

    Raises ``ValueError`` (``UnknownInstanceType``, ``UnsupportedVersion``, a catalog property
    the engine lacks) when something cannot be rendered; the agent reports that and keeps the
    last good state.
    """
    objects: list[KubeObject] = []
    for metastore in state.metastores:
        objects.extend(render_metastore(metastore, registry_mirror=state.registry_mirror))
    for cache in state.caches:
        objects.extend(render_cache(cache, registry_mirror=state.registry_mirror))
    for cluster in state.clusters:
        catalogs = [c for c in state.catalogs_of(cluster) if c.id not in unavailable_catalogs]
        objects.extend(
            render_cluster(
                cluster,
                vpc_cidr=state.vpc_cidr,
                registry_mirror=state.registry_mirror,
                catalogs=catalogs,
                cache=state.cache_of(cluster),
            )
        )
    if state.gateway is not None:
        objects.extend(
            render_gateway(
                state.gateway,
                state.clusters,
                vpc_cidr=state.vpc_cidr,
                environment=gateway or GatewayEnvironment(image=DEFAULT_IMAGE),
            )
        )
    return objects
