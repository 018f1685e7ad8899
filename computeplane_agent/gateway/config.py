"""The gateway's configuration: the JSON the agent writes, parsed into frozen dataclasses.

Parsing collects every problem with the path of the field it concerns
(``groups[0].clusters[1].url``) so the agent and the control plane's dry run can show all of
them at once. A config that fails to parse is never half-applied: the running gateway keeps its
last good one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CLUSTER_STATES = ("running", "starting", "stopped", "suspended", "draining")
ENGINES = ("trino", "presto")


class ConfigError(ValueError):
    """The config is invalid; ``errors`` maps a field path to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {why}" for path, why in errors.items()))


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    engine: str
    url: str
    state: str
    cache: str | None = None

    @property
    def sleeping(self) -> bool:
        """Stopped or auto-suspended: it takes no queries until it is woken."""
        return self.state in ("stopped", "suspended")


@dataclass(frozen=True)
class Group:
    name: str
    clusters: tuple[Cluster, ...]
    fallback: str | None = None
    prefer_cache: bool = False


@dataclass(frozen=True)
class Match:
    """Every given field must match; an empty match matches every request."""

    user: re.Pattern[str] | None = None
    source: re.Pattern[str] | None = None
    client_tags: tuple[str, ...] = ()
    headers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    catalog: re.Pattern[str] | None = None
    schema: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    group: str
    match: Match


@dataclass(frozen=True)
class Health:
    interval_seconds: float = 2.0
    timeout_seconds: float = 1.0
    fail_threshold: int = 3
    success_threshold: int = 2


@dataclass(frozen=True)
class Wake:
    enabled: bool = True
    max_wait_seconds: float = 300.0


@dataclass(frozen=True)
class GatewayConfig:
    version: str
    groups: tuple[Group, ...]
    rules: tuple[Rule, ...]
    default_group: str | None
    health: Health = field(default_factory=Health)
    wake: Wake = field(default_factory=Wake)
    query_text: bool = False
    agent_url: str | None = None
    listen_host: str = "0.0.0.0"  # noqa: S104 - the gateway serves the VPC, behind its Service
    listen_port: int = 8080

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    def cluster(self, cluster_id: str) -> Cluster | None:
        return next((c for g in self.groups for c in g.clusters if c.id == cluster_id), None)

    def clusters(self) -> dict[str, Cluster]:
        """Every cluster once, by id (a cluster may belong to several groups)."""
        return {c.id: c for g in self.groups for c in g.clusters}

    def ordered_rules(self) -> list[Rule]:
        """Lowest priority number first; ties by name, so the order never depends on the file."""
        return sorted(self.rules, key=lambda r: (r.priority, r.name))


class _Reader:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, why: str) -> None:
        self.errors.setdefault(path, why)

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, "must be an object")
        return {}

    def objects(self, value: Any, path: str) -> list[tuple[int, Mapping[str, Any]]]:
        """The objects of a list field, with their index (for error paths)."""
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return []
        return [(i, self.obj(item, f"{path}[{i}]")) for i, item in enumerate(value)]

    def str_(
        self, d: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> str | None:
        value = d.get(key)
        if value is None:
            if required:
                self.fail(f"{path}{key}", "is required")
            return None
        if not isinstance(value, str) or not value:
            self.fail(f"{path}{key}", "must be a non-empty string")
            return None
        return value

    def number(
        self, d: Mapping[str, Any], key: str, path: str, default: float, *, integer: bool = False
    ) -> float:
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.fail(
                f"{path}{key}",
                "must be a positive integer" if integer else "must be a positive number",
            )
            return default
        if integer and not isinstance(value, int):
            self.fail(f"{path}{key}", "must be a positive integer")
            return default
        return value

    def bool_(self, d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = d.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{path}{key}", "must be true or false")
            return default
        return value

    def regex(self, value: Any, path: str) -> re.Pattern[str] | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(path, "must be a regular expression string")
            return None
        try:
            return re.compile(value)
        except re.error as exc:
            self.fail(path, f"is not a valid regular expression: {exc}")
            return None


def _cluster(r: _Reader, raw: Any, path: str) -> Cluster | None:
    d = r.obj(raw, path)
    if not d:
        return None
    cid = r.str_(d, "id", f"{path}.")
    url = r.str_(d, "url", f"{path}.")
    engine = r.str_(d, "engine", f"{path}.")
    state = r.str_(d, "state", f"{path}.")
    name = r.str_(d, "name", f"{path}.", required=False) or cid
    cache = d.get("cache")
    if engine is not None and engine not in ENGINES:
        r.fail(f"{path}.engine", f"must be one of {', '.join(ENGINES)}")
    if state is not None and state not in CLUSTER_STATES:
        r.fail(f"{path}.state", f"must be one of {', '.join(CLUSTER_STATES)}")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        r.fail(f"{path}.url", "must be an http:// or https:// address")
    if cache is not None and not isinstance(cache, str):
        r.fail(f"{path}.cache", "must be a cache id or null")
        cache = None
    if cid is None or url is None or engine is None or state is None or name is None:
        return None
    return Cluster(id=cid, name=name, engine=engine, url=url.rstrip("/"), state=state, cache=cache)


def _match(r: _Reader, raw: Any, path: str) -> Match:
    d = r.obj(raw if raw is not None else {}, path)
    unknown = set(d) - {"user", "source", "client_tags", "headers", "catalog", "schema"}
    for key in sorted(unknown):
        r.fail(
            f"{path}.{key}",
            "is not a match field (user, source, client_tags, headers, catalog, schema)",
        )
    tags = d.get("client_tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        r.fail(f"{path}.client_tags", "must be a list of non-empty strings")
        tags = []
    headers: list[tuple[str, re.Pattern[str]]] = []
    raw_headers = d.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        r.fail(f"{path}.headers", "must be an object of header name to regular expression")
        raw_headers = {}
    for name, pattern in raw_headers.items():
        compiled = r.regex(pattern, f"{path}.headers.{name}")
        if compiled is not None:
            headers.append((name.lower(), compiled))
    return Match(
        user=r.regex(d.get("user"), f"{path}.user"),
        source=r.regex(d.get("source"), f"{path}.source"),
        client_tags=tuple(tags),
        headers=tuple(headers),
        catalog=r.regex(d.get("catalog"), f"{path}.catalog"),
        schema=r.regex(d.get("schema"), f"{path}.schema"),
    )


def _fallback_cycles(groups: dict[str, Group]) -> list[str]:
    """Groups whose fallback chain comes back to themselves (routing stays finite anyway)."""
    cyclic = []
    for start in groups:
        seen = {start}
        cur = groups[start].fallback
        while cur is not None and cur in groups:
            if cur == start:
                cyclic.append(start)
                break
            if cur in seen:
                break
            seen.add(cur)
            cur = groups[cur].fallback
    return cyclic


def parse_config(raw: Any) -> GatewayConfig:
    """Validate ``raw`` (the decoded JSON): the config, or ConfigError listing every problem."""
    r = _Reader()
    d = r.obj(raw, "config")
    if not d:
        raise ConfigError(r.errors or {"config": "must not be empty"})
    version = r.str_(d, "version", "") or ""

    groups: list[Group] = []
    for i, gd in r.objects(d.get("groups"), "groups"):
        path = f"groups[{i}]"
        name = r.str_(gd, "name", f"{path}.")
        raw_clusters = gd.get("clusters")
        if not isinstance(raw_clusters, list) or not raw_clusters:
            r.fail(f"{path}.clusters", "must list at least one cluster")
            raw_clusters = []
        clusters = [
            c
            for j, rc in enumerate(raw_clusters)
            if (c := _cluster(r, rc, f"{path}.clusters[{j}]"))
        ]
        ids = [c.id for c in clusters]
        if len(set(ids)) != len(ids):
            r.fail(f"{path}.clusters", "lists a cluster twice")
        fallback = r.str_(gd, "fallback", f"{path}.", required=False)
        prefer_cache = r.bool_(gd, "prefer_cache", f"{path}.", False)
        if name is not None:
            if any(g.name == name for g in groups):
                r.fail(f"{path}.name", f"another group is already named {name!r}")
            groups.append(
                Group(
                    name=name,
                    clusters=tuple(clusters),
                    fallback=fallback,
                    prefer_cache=prefer_cache,
                )
            )
    by_name = {g.name: g for g in groups}
    for i, g in enumerate(groups):
        if g.fallback is not None and g.fallback not in by_name:
            r.fail(f"groups[{i}].fallback", f"names no group: {g.fallback!r}")
        if g.fallback == g.name:
            r.fail(f"groups[{i}].fallback", "a group cannot fall back to itself")
    for name in _fallback_cycles(by_name):
        i = next(i for i, g in enumerate(groups) if g.name == name)
        r.fail(f"groups[{i}].fallback", f"the fallback chain from {name!r} comes back to it")
    urls: dict[str, str] = {}
    for c in (c for g in groups for c in g.clusters):
        if urls.setdefault(c.id, c.url) != c.url:
            r.fail("groups", f"cluster {c.id} has two different addresses")

    rules: list[Rule] = []
    for i, rd in r.objects(d.get("rules", []), "rules"):
        path = f"rules[{i}]"
        name = r.str_(rd, "name", f"{path}.")
        group = r.str_(rd, "group", f"{path}.")
        priority = rd.get("priority", 100)
        if isinstance(priority, bool) or not isinstance(priority, int):
            r.fail(f"{path}.priority", "must be an integer")
            priority = 100
        if group is not None and group not in by_name:
            r.fail(f"{path}.group", f"names no group: {group!r}")
        match = _match(r, rd.get("match"), f"{path}.match")
        if name is not None and any(x.name == name for x in rules):
            r.fail(f"{path}.name", f"another rule is already named {name!r}")
        if name is not None and group is not None:
            rules.append(Rule(name=name, priority=priority, group=group, match=match))

    default_group = r.str_(d, "default_group", "", required=False)
    if default_group is not None and default_group not in by_name:
        r.fail("default_group", f"names no group: {default_group!r}")

    hd = r.obj(d.get("health", {}), "health")
    health = Health(
        interval_seconds=r.number(hd, "interval_seconds", "health.", 2.0),
        timeout_seconds=r.number(hd, "timeout_seconds", "health.", 1.0),
        fail_threshold=int(r.number(hd, "fail_threshold", "health.", 3, integer=True)),
        success_threshold=int(r.number(hd, "success_threshold", "health.", 2, integer=True)),
    )
    wd = r.obj(d.get("wake", {}), "wake")
    wake = Wake(
        enabled=r.bool_(wd, "enabled", "wake.", True),
        max_wait_seconds=r.number(wd, "max_wait_seconds", "wake.", 300.0),
    )
    agent_url = r.str_(d, "agent_url", "", required=False)
    ld = r.obj(d.get("listen", {}), "listen")
    host = r.str_(ld, "host", "listen.", required=False) or "0.0.0.0"  # noqa: S104 - see GatewayConfig.listen_host
    port = ld.get("port", 8080)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        r.fail("listen.port", "must be a port number (0-65535)")
        port = 8080
    query_text = r.bool_(d, "query_text", "", False)

    if r.errors:
        raise ConfigError(r.errors)
    return GatewayConfig(
        version=version,
        groups=tuple(groups),
        rules=tuple(rules),
        default_group=default_group,
        health=health,
        wake=wake,
        query_text=query_text,
        agent_url=agent_url.rstrip("/") if agent_url else None,
        listen_host=host,
        listen_port=port,
    )


def load_config(text: str | bytes) -> GatewayConfig:
    """Parse the config file's content."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError({"config": f"is not valid JSON: {exc}"}) from exc
    return parse_config(raw)
