"""The gateway part of a compute plane's desired state, and the same routing view for the dry run.

``controlplane.clusters.desired.desired_state`` includes :func:`gateway_spec`, so every publish
carries the plane's gateway with its groups and rules as they are now.

A plane nobody has configured routing for still gets a working gateway: with no routing groups,
one implicit group ``default`` holds every live cluster of the plane and is the default group,
so one address spreads queries over all clusters from the start (docs/gateway.md).

Groups only name clusters that are in the same desired state: a deleted cluster leaves its
groups; a group left with no cluster is not published, and neither are the rules that pick it;
a fallback or default naming it is dropped. The API refuses to make such a group (422), this only
covers a cluster deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from computeplane_agent import contract
from computeplane_agent.gateway.config import GatewayConfig, parse_config
from computeplane_agent.gateway.health import DOWN, UP, ClusterHealth
from computeplane_agent.render.cluster import resource_prefix
from computeplane_agent.render.engines import HTTP_PORT
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.gateways.models import Gateway, RoutingGroup, RoutingRule

IMPLICIT_GROUP = "default"
# Cluster statuses the desired state leaves out (the agent removes their objects).
GONE = (ClusterStatus.DELETING, ClusterStatus.DELETED)


def plane_gateway(plane: ComputePlane) -> Gateway:
    """The plane's gateway row, or an unsaved one with the defaults."""
    gateway = Gateway.objects.filter(compute_plane_id=plane.pk).first()
    return gateway or Gateway(organization_id=plane.organization_id, compute_plane=plane)


def live_clusters(plane: ComputePlane) -> list[Cluster]:
    return list(
        Cluster.objects.filter(compute_plane_id=plane.pk, deleted_at__isnull=True)
        .exclude(status__in=GONE)
        .order_by("id")
    )


def _match_spec(match: dict[str, Any]) -> contract.RoutingMatch:
    return contract.RoutingMatch(
        user=match.get("user"),
        source=match.get("source"),
        client_tags=list(match.get("client_tags") or []),
        headers=dict(match.get("headers") or {}),
        catalog=match.get("catalog"),
        schema_name=match.get("schema"),
    )


def _groups_and_rules(plane: ComputePlane) -> tuple[list[RoutingGroup], list[RoutingRule]]:
    groups = list(
        RoutingGroup.objects.filter(compute_plane_id=plane.pk)
        .select_related("fallback")
        .prefetch_related("clusters")
        .order_by("name")
    )
    rules = list(
        RoutingRule.objects.filter(compute_plane_id=plane.pk)
        .select_related("group")
        .order_by("priority", "name")
    )
    return groups, rules


def gateway_spec(plane: ComputePlane, clusters: Iterable[Cluster]) -> contract.GatewaySpec:
    """``DesiredState.gateway`` for ``plane`` whose live clusters are ``clusters``."""
    gateway = plane_gateway(plane)
    live_ids = [c.id for c in clusters]
    groups, rules = _groups_and_rules(plane)
    group_specs: list[contract.RoutingGroupSpec] = []
    if not groups:
        if live_ids:
            group_specs.append(contract.RoutingGroupSpec(name=IMPLICIT_GROUP, clusters=live_ids))
        default = IMPLICIT_GROUP if live_ids else None
    else:
        live = set(live_ids)
        members = {
            g.name: [c.id for c in sorted(g.clusters.all(), key=lambda c: c.id) if c.id in live]
            for g in groups
        }
        published = {name for name, ids in members.items() if ids}
        for g in groups:
            if g.name in published:
                fallback = g.fallback.name if g.fallback is not None else None
                group_specs.append(
                    contract.RoutingGroupSpec(
                        name=g.name,
                        clusters=members[g.name],
                        fallback=fallback if fallback in published else None,
                        prefer_cache=g.prefer_cache,
                    )
                )
        rules = [r for r in rules if r.group.name in published]
        default_name = (
            next((g.name for g in groups if g.pk == gateway.default_group_id), None)
            if gateway.default_group_id
            else None
        )
        default = default_name if default_name in published else None
    return contract.GatewaySpec(
        enabled=gateway.enabled,
        replicas=gateway.replicas,
        routing_groups=group_specs,
        rules=[
            contract.RoutingRuleSpec(
                name=r.name, priority=r.priority, group=r.group.name, match=_match_spec(r.match)
            )
            for r in rules
        ]
        if groups
        else [],
        default_group=default,
        query_text=gateway.query_text_enabled,
        health=contract.GatewayHealthSpec.model_validate(gateway.health or {}),
        wake=contract.GatewayWakeSpec.model_validate(gateway.wake or {}),
    )


# --- the same view for the dry run ------------------------------------------------------------


def gateway_cluster_state(cluster: Cluster) -> str:
    """What the gateway's config says about a cluster (``computeplane_agent.gateway.config``)."""
    if getattr(cluster, "draining", False):
        return "draining"
    status = cluster.status
    if status in (ClusterStatus.RUNNING, ClusterStatus.RESIZING, ClusterStatus.RESTARTING):
        return "running"
    if status in (ClusterStatus.STARTING, ClusterStatus.PROVISIONING):
        return "starting"
    if status == "suspended":
        return "suspended"
    if status == ClusterStatus.FAILED:
        # Published as running (the agent keeps trying); the gateway's probes find it down.
        return "running"
    return "stopped"


def dry_run_health(clusters: Iterable[Cluster]) -> dict[str, ClusterHealth]:
    """What the control plane knows in place of the gateway's probes: a running cluster is up
    (load unknown, so 0), a failed one down. The gateway itself decides on its probes."""
    health = {}
    for c in clusters:
        if c.status == ClusterStatus.FAILED:
            health[c.id] = ClusterHealth(state=DOWN, last_error="the cluster failed")
        elif gateway_cluster_state(c) == "running":
            health[c.id] = ClusterHealth(state=UP)
    return health


def _coordinator_url(cluster: Cluster) -> str:
    return f"http://{resource_prefix(cluster.id)}-coordinator:{HTTP_PORT}"


def raw_config(spec: contract.GatewaySpec, clusters: Iterable[Cluster]) -> dict[str, Any]:
    """The gateway's own config document for ``spec`` (what ``parse_config`` reads)."""
    by_id = {c.id: c for c in clusters}

    def entry(cluster_id: str) -> dict[str, Any]:
        c = by_id[cluster_id]
        return {
            "id": c.id,
            "name": c.name,
            "engine": c.engine,
            "url": _coordinator_url(c),
            "state": gateway_cluster_state(c),
            "cache": c.cache_id,
        }

    return {
        "version": "control-plane",
        "groups": [
            {
                "name": g.name,
                "clusters": [entry(cid) for cid in g.clusters],
                **({"fallback": g.fallback} if g.fallback else {}),
                "prefer_cache": g.prefer_cache,
            }
            for g in spec.routing_groups
        ],
        "rules": [
            {
                "name": r.name,
                "priority": r.priority,
                "group": r.group,
                "match": {
                    k: v
                    for k, v in {
                        "user": r.match.user,
                        "source": r.match.source,
                        "client_tags": list(r.match.client_tags),
                        "headers": dict(r.match.headers),
                        "catalog": r.match.catalog,
                        "schema": r.match.schema_name,
                    }.items()
                    if v not in (None, [], {})
                },
            }
            for r in spec.rules
        ],
        **({"default_group": spec.default_group} if spec.default_group else {}),
        "health": spec.health.model_dump(),
        "wake": spec.wake.model_dump(),
        "query_text": spec.query_text,
    }


def gateway_config(plane: ComputePlane, clusters: list[Cluster] | None = None) -> GatewayConfig:
    """The plane's routing as the gateway would load it (raises ConfigError if it would not)."""
    clusters = live_clusters(plane) if clusters is None else clusters
    return parse_config(raw_config(gateway_spec(plane, clusters), clusters))
