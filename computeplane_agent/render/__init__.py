"""Rendering desired state into Kubernetes objects (plain dicts, in apply order)."""

from __future__ import annotations

from computeplane_agent.contract import DesiredState
from computeplane_agent.render.cluster import (
    LABEL_CLUSTER,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    KubeObject,
    render_cluster,
    resource_prefix,
)

__all__ = [
    "LABEL_CLUSTER",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "KubeObject",
    "render_cluster",
    "render_desired_state",
    "resource_prefix",
]


def render_desired_state(state: DesiredState) -> list[KubeObject]:
    """Every object the agent should have applied for this desired state.

    Raises ``ValueError`` (``UnknownInstanceType``, ``UnsupportedVersion``) when a cluster cannot
    be rendered; the agent reports that and keeps the last good state.
    """
    objects: list[KubeObject] = []
    for cluster in state.clusters:
        objects.extend(
            render_cluster(
                cluster,
                vpc_cidr=state.vpc_cidr,
                registry_mirror=state.registry_mirror,
                catalogs=state.catalogs_of(cluster),
            )
        )
    return objects
