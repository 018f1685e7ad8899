"""Which cluster a query goes to, and why: one pure function shared by the gateway and the dry run.

``route(config, facts, health)`` walks the rules in priority order (ties by name), takes the first
rule that matches the request, else the default group, then picks inside the group. Patterns match
the whole value (``etl-.*``, not a substring). Inside a group only clusters that are running, not
draining and healthy take queries; among those the lowest load wins (queued + running on the
coordinator plus the gateway's own in-flight count), a cluster with a cache first when the group
prefers caches. A group with nothing usable falls back along its declared chain (each group at most
once); a group whose clusters are all asleep is woken instead. Never a random cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from computeplane_agent.gateway.config import Cluster, GatewayConfig, Group, Match
from computeplane_agent.gateway.health import DOWN, STARTING, UNKNOWN, UP, ClusterHealth


@dataclass(frozen=True)
class RequestFacts:
    user: str | None = None
    source: str | None = None
    client_tags: tuple[str, ...] = ()
    #: lower-case header name -> value
    headers: Mapping[str, str] = field(default_factory=dict)
    catalog: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Decision:
    group: str | None
    cluster_id: str | None
    reasons: list[str]
    #: a sleeping cluster the gateway should wake (and wait for) before the query can run
    wake: str | None = None


def _mismatch(match: Match, facts: RequestFacts) -> str | None:
    """Why the request does not match, or None when it does."""
    for label, pattern, value in (
        ("user", match.user, facts.user),
        ("source", match.source, facts.source),
        ("catalog", match.catalog, facts.catalog),
        ("schema", match.schema, facts.schema),
    ):
        if pattern is not None and (value is None or not pattern.fullmatch(value)):
            return (
                f"{label} {value!r} does not match {pattern.pattern!r}"
                if value
                else f"the request has no {label}"
            )
    missing = [t for t in match.client_tags if t not in facts.client_tags]
    if missing:
        return f"client tags lack {', '.join(missing)}"
    for name, pattern in match.headers:
        value = facts.headers.get(name)
        if value is None or not pattern.fullmatch(value):
            return f"header {name} {value!r} does not match {pattern.pattern!r}"
    return None


def choose_group(config: GatewayConfig, facts: RequestFacts) -> tuple[Group | None, list[str]]:
    reasons = []
    for rule in config.ordered_rules():
        why_not = _mismatch(rule.match, facts)
        if why_not is None:
            reasons.append(
                f"Rule {rule.name!r} (priority {rule.priority}) matched: group {rule.group!r}."
            )
            return config.group(rule.group), reasons
        reasons.append(f"Rule {rule.name!r} (priority {rule.priority}) did not match: {why_not}.")
    if config.default_group is not None:
        reasons.append(f"No rule matched; the default group {config.default_group!r} applies.")
        return config.group(config.default_group), reasons
    reasons.append("No rule matched and there is no default group.")
    return None, reasons


def _pick(
    group: Group,
    health: Mapping[str, ClusterHealth],
    in_flight: Mapping[str, int],
    reasons: list[str],
) -> Cluster | None:
    usable: list[tuple[Cluster, int, bool]] = []
    for c in group.clusters:
        h = health.get(c.id, ClusterHealth())
        if c.state == "draining":
            reasons.append(f"Cluster {c.name} is draining: it takes no new queries.")
        elif c.state != "running":
            reasons.append(f"Cluster {c.name} is {c.state}.")
        elif h.state in (DOWN, STARTING):
            why = f" ({h.last_error})" if h.state == DOWN and h.last_error else ""
            reasons.append(f"Cluster {c.name} is {h.state}{why}.")
        else:
            usable.append((c, h.load + in_flight.get(c.id, 0), h.state == UP))
    if not usable:
        return None
    # Known-healthy before not-yet-probed; then cache; then load; then name for a stable answer.
    usable.sort(
        key=lambda u: (
            not u[2],
            group.prefer_cache and u[0].cache is None,
            u[1],
            u[0].name,
            u[0].id,
        )
    )
    chosen, load, known = usable[0]
    parts = [f"load {load}"]
    if group.prefer_cache and chosen.cache is not None:
        parts.append(f"cache {chosen.cache}")
    if not known:
        parts.append("health not yet probed")
    others = len(usable) - 1
    tail = (
        f", the lowest of {others + 1} usable clusters" if others else ", the only usable cluster"
    )
    reasons.append(
        f"Chose cluster {chosen.name} in group {group.name!r} ({', '.join(parts)}{tail})."
    )
    return chosen


def _asleep(group: Group, health: Mapping[str, ClusterHealth]) -> Cluster | None:
    """The cluster to wake when every cluster of the group that could serve is asleep/starting."""
    candidates = [c for c in group.clusters if c.state != "draining"]
    if not candidates:
        return None
    waking = [
        c
        for c in candidates
        if c.state == "starting" or health.get(c.id, ClusterHealth()).state == STARTING
    ]
    sleeping = [c for c in candidates if c.sleeping and c not in waking]
    if len(waking) + len(sleeping) != len(candidates):
        return None
    # One already on its way up is the quickest; otherwise the first declared.
    return (waking or sleeping)[0]


def route(
    config: GatewayConfig,
    facts: RequestFacts,
    health: Mapping[str, ClusterHealth] | None = None,
    in_flight: Mapping[str, int] | None = None,
) -> Decision:
    """Where this request goes; a cluster missing from ``health`` is judged by its state alone."""
    health = health or {}
    in_flight = in_flight or {}
    group, reasons = choose_group(config, facts)
    if group is None:
        return Decision(group=None, cluster_id=None, reasons=reasons)
    first = group.name
    seen: set[str] = set()
    while group is not None and group.name not in seen:
        seen.add(group.name)
        chosen = _pick(group, health, in_flight, reasons)
        if chosen is not None:
            return Decision(group=group.name, cluster_id=chosen.id, reasons=reasons)
        to_wake = _asleep(group, health)
        if to_wake is not None:
            if config.wake.enabled:
                reasons.append(
                    f"Every cluster of group {group.name!r} is asleep; "
                    f"waking cluster {to_wake.name}."
                )
                return Decision(group=group.name, cluster_id=None, reasons=reasons, wake=to_wake.id)
            reasons.append(
                f"Every cluster of group {group.name!r} is asleep and waking is turned off."
            )
        if group.fallback is None:
            reasons.append(f"Group {group.name!r} has no usable cluster and no fallback.")
            break
        if group.fallback in seen:
            reasons.append(f"Group {group.name!r} falls back to {group.fallback!r}, already tried.")
            break
        reasons.append(
            f"Group {group.name!r} has no usable cluster; falling back to group {group.fallback!r}."
        )
        group = config.group(group.fallback)
    reasons.append(f"No cluster can take the query (group {first!r} and its fallbacks).")
    return Decision(group=first, cluster_id=None, reasons=reasons)


__all__ = ["DOWN", "STARTING", "UNKNOWN", "UP", "Decision", "RequestFacts", "choose_group", "route"]
