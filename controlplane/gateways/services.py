"""The write path for a compute plane's gateway: settings, routing groups and rules.

Every write runs in one transaction under the plane's gateway lock (the plane row, so two writes
to one plane's routing serialise), checks the rules below, writes, checks that the whole plane's
routing still loads in the gateway (``computeplane_agent.gateway.config.parse_config``, the
gateway's own parser), publishes the plane's desired state and audits. The gateway applies a
new configuration without a restart, so no operation is needed.

Rules: names are unique per plane; a group has at least one cluster, each a live cluster of the
same organization and compute plane (another organization's cluster looks like a missing one);
a rule or fallback names a group of the same plane; a fallback chain never comes back to its
start; patterns are regular expressions (Python's ``re``, the gateway's engine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from computeplane_agent import contract
from computeplane_agent.gateway.config import ConfigError
from controlplane.clusters.desired import publish_plane
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput
from controlplane.gateways import desired, ingest
from controlplane.gateways.models import Gateway, RoutingGroup, RoutingRule

Errors = dict[str, list[str]]

MATCH_FIELDS = ("user", "source", "client_tags", "headers", "catalog", "schema")
PATTERN_FIELDS = ("user", "source", "catalog", "schema")
HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,128}$")
MAX_PATTERN = 512
MAX_TAG = 128
MAX_TEXT_DAYS = 365


def _lock_plane(plane: ComputePlane) -> ComputePlane:
    return ComputePlane.objects.select_for_update(of=("self",)).get(pk=plane.pk)


def _locked_gateway(plane: ComputePlane) -> Gateway:
    gateway, _ = Gateway.objects.select_for_update().get_or_create(
        compute_plane=plane, defaults={"organization_id": plane.organization_id}
    )
    return gateway


def _check_loads(plane: ComputePlane) -> None:
    """The plane's whole routing as the gateway would load it; refused if it would not."""
    try:
        desired.gateway_config(plane)
    except ConfigError as exc:  # pragma: no cover - the field checks above come first
        raise InvalidInput(
            "The gateway would refuse this routing.",
            errors={f"config.{path}": [why] for path, why in exc.errors.items()},
        ) from exc


def _publish(plane: ComputePlane) -> None:
    _check_loads(plane)
    publish_plane(plane)


# --- the gateway's settings -------------------------------------------------------------------


def _check_spec(model: type[contract.ContractModel], value: Any, field: str, errors: Errors) -> Any:
    import pydantic

    if not isinstance(value, dict):
        errors[field] = ["An object."]
        return None
    try:
        return model.model_validate(value).model_dump(exclude_defaults=True)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = ".".join(str(p) for p in error["loc"])
            errors.setdefault(f"{field}.{loc}" if loc else field, []).append(error["msg"])
        return None


def update_gateway(*, actor: Actor, plane: ComputePlane, changes: dict[str, Any]) -> Gateway:
    """PATCH the gateway: ``enabled``, ``replicas``, ``default_group`` (a group id or null),
    ``query_text_retention`` ({enabled, days}), ``health``, ``wake``."""
    errors: Errors = {}
    with transaction.atomic():
        plane = _lock_plane(plane)
        gateway = _locked_gateway(plane)
        if "enabled" in changes:
            gateway.enabled = changes["enabled"]
        if "replicas" in changes:
            if not 1 <= changes["replicas"] <= 10:
                errors["replicas"] = ["Between 1 and 10."]
            gateway.replicas = changes["replicas"]
        if "default_group" in changes:
            group_id = changes["default_group"]
            if group_id is None:
                gateway.default_group = None
            else:
                group = RoutingGroup.objects.filter(compute_plane=plane, pk=group_id).first()
                if group is None:
                    errors["default_group"] = [f"No routing group {group_id} on this plane."]
                gateway.default_group = group
        retention = changes.get("query_text_retention")
        if retention is not None:
            if "enabled" in retention:
                gateway.query_text_enabled = retention["enabled"]
            if "days" in retention:
                if not 1 <= retention["days"] <= MAX_TEXT_DAYS:
                    errors["query_text_retention.days"] = [f"Between 1 and {MAX_TEXT_DAYS}."]
                gateway.query_text_days = retention["days"]
        for field, model in (
            ("health", contract.GatewayHealthSpec),
            ("wake", contract.GatewayWakeSpec),
        ):
            if field in changes:
                merged = {**getattr(gateway, field), **(changes[field] or {})}
                checked = _check_spec(model, merged, field, errors)
                if checked is not None:
                    setattr(gateway, field, checked)
        if errors:
            raise InvalidInput("The gateway cannot be configured as requested.", errors=errors)
        gateway.save()
        if not gateway.query_text_enabled:
            ingest.clear_text(plane.pk)
        _publish(plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.updated",
            target=gateway,
            data={"compute_plane": plane.pk, "changed": sorted(changes)},
        )
    return gateway


# --- routing groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRequest:
    name: str | None = None
    clusters: list[str] | None = None
    fallback: str | None = None
    fallback_given: bool = False
    prefer_cache: bool | None = None


def _plane_clusters(plane: ComputePlane, ids: list[str], errors: Errors) -> list[Cluster]:
    if not ids:
        errors["clusters"] = ["List at least one cluster of this compute plane."]
        return []
    if len(set(ids)) != len(ids):
        errors["clusters"] = ["A cluster is listed twice."]
    found = {
        c.id: c
        for c in Cluster.objects.filter(
            compute_plane=plane, organization_id=plane.organization_id, deleted_at__isnull=True
        )
        .exclude(status__in=desired.GONE)
        .filter(pk__in=ids)
    }
    for i, cid in enumerate(ids):
        if cid not in found:
            errors[f"clusters.{i}"] = [f"No cluster {cid} on this compute plane."]
    return [found[cid] for cid in dict.fromkeys(ids) if cid in found]


def _fallback(
    plane: ComputePlane, group: RoutingGroup | None, fallback_id: str | None, errors: Errors
) -> RoutingGroup | None:
    if fallback_id is None:
        return None
    target = RoutingGroup.objects.filter(compute_plane=plane, pk=fallback_id).first()
    if target is None:
        errors["fallback"] = [f"No routing group {fallback_id} on this compute plane."]
        return None
    if group is not None and group.pk is not None:
        if target.pk == group.pk:
            errors["fallback"] = ["A group cannot fall back to itself."]
            return None
        # Walk the chain from the target: reaching this group again would be a cycle.
        fallbacks = dict(
            RoutingGroup.objects.filter(compute_plane=plane).values_list("id", "fallback_id")
        )
        seen, cur = {target.pk}, fallbacks.get(target.pk)
        while cur is not None and cur not in seen:
            if cur == group.pk:
                errors["fallback"] = [
                    f"Group {target.name} falls back (through its chain) to this group: "
                    "the chain would be a cycle."
                ]
                return None
            seen.add(cur)
            cur = fallbacks.get(cur)
    return target


def _name_free(
    model: type[RoutingGroup | RoutingRule],
    plane: ComputePlane,
    name: str,
    exclude: Any,
    errors: Errors,
) -> None:
    taken = model.objects.filter(compute_plane=plane, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        errors["name"] = [f"'{name}' already exists on this compute plane."]


def create_group(*, actor: Actor, plane: ComputePlane, request: GroupRequest) -> RoutingGroup:
    errors: Errors = {}
    with transaction.atomic():
        plane = _lock_plane(plane)
        assert request.name is not None
        assert request.clusters is not None
        _name_free(RoutingGroup, plane, request.name, None, errors)
        clusters = _plane_clusters(plane, request.clusters, errors)
        fallback = _fallback(plane, None, request.fallback, errors)
        if errors:
            raise InvalidInput("The routing group cannot be created as requested.", errors=errors)
        group = RoutingGroup.objects.create(
            organization_id=plane.organization_id,
            compute_plane=plane,
            name=request.name,
            fallback=fallback,
            prefer_cache=bool(request.prefer_cache),
        )
        group.clusters.set(clusters)
        _publish(plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.routing_group.created",
            target=group,
            data={"compute_plane": plane.pk, "clusters": [c.id for c in clusters]},
        )
    return group


def update_group(*, actor: Actor, group: RoutingGroup, request: GroupRequest) -> RoutingGroup:
    errors: Errors = {}
    changed = []
    with transaction.atomic():
        plane = _lock_plane(group.compute_plane)
        group = RoutingGroup.objects.select_for_update().get(pk=group.pk)
        if request.name is not None and request.name != group.name:
            _name_free(RoutingGroup, plane, request.name, group.pk, errors)
            group.name = request.name
            changed.append("name")
        clusters = None
        if request.clusters is not None:
            clusters = _plane_clusters(plane, request.clusters, errors)
            changed.append("clusters")
        if request.fallback_given:
            group.fallback = _fallback(plane, group, request.fallback, errors)
            changed.append("fallback")
        if request.prefer_cache is not None:
            group.prefer_cache = request.prefer_cache
            changed.append("prefer_cache")
        if errors:
            raise InvalidInput("The routing group cannot be changed as requested.", errors=errors)
        group.save()
        if clusters is not None:
            group.clusters.set(clusters)
        _publish(plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.routing_group.updated",
            target=group,
            data={"compute_plane": plane.pk, "changed": changed},
        )
    return group


def delete_group(*, actor: Actor, group: RoutingGroup) -> None:
    """Refused (409) while a rule picks the group, another falls back to it or it is the
    default: deleting it would silently change where those queries go."""
    with transaction.atomic():
        plane = _lock_plane(group.compute_plane)
        users = [
            f"rule {name}" for name in group.rules.order_by("name").values_list("name", flat=True)
        ]
        users += [
            f"group {name} (fallback)"
            for name in group.fallback_for.order_by("name").values_list("name", flat=True)
        ]
        if Gateway.objects.filter(compute_plane=plane, default_group=group).exists():
            users.append("the gateway's default group")
        if users:
            raise Conflict(
                f"Routing group {group.name} is still in use by {', '.join(users)}; "
                "point them elsewhere first."
            )
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.routing_group.deleted",
            target=group,
            data={"compute_plane": plane.pk, "name": group.name},
        )
        group.delete()
        _publish(plane)


# --- routing rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleRequest:
    name: str | None = None
    priority: int | None = None
    group: str | None = None
    match: dict[str, Any] | None = None


def _pattern(value: Any, field: str, errors: Errors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        errors[field] = ["A regular expression (a non-empty string)."]
        return None
    if len(value) > MAX_PATTERN:
        errors[field] = [f"At most {MAX_PATTERN} characters."]
        return None
    try:
        re.compile(value)
    except re.error as exc:
        errors[field] = [f"Not a valid regular expression: {exc}."]
        return None
    return value


def clean_match(raw: Any, errors: Errors) -> dict[str, Any]:
    """The match object as stored; every problem under ``match.<field>``."""
    if not isinstance(raw, dict):
        errors["match"] = ["An object with any of: " + ", ".join(MATCH_FIELDS) + "."]
        return {}
    out: dict[str, Any] = {}
    for key in sorted(set(raw) - set(MATCH_FIELDS)):
        errors[f"match.{key}"] = [f"Not a match field ({', '.join(MATCH_FIELDS)})."]
    for key in PATTERN_FIELDS:
        value = _pattern(raw.get(key), f"match.{key}", errors)
        if value is not None:
            out[key] = value
    tags = raw.get("client_tags")
    if tags is not None:
        if (
            not isinstance(tags, list)
            or len(tags) > contract.MAX_RULE_TAGS
            or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG for t in tags)
        ):
            errors["match.client_tags"] = [
                f"A list of at most {contract.MAX_RULE_TAGS} non-empty tags "
                f"(up to {MAX_TAG} characters each)."
            ]
        elif tags:
            out["client_tags"] = list(tags)
    headers = raw.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or len(headers) > contract.MAX_RULE_HEADERS:
            errors["match.headers"] = [
                f"An object of at most {contract.MAX_RULE_HEADERS} header names to "
                "regular expressions."
            ]
        else:
            clean: dict[str, str] = {}
            for name, pattern in headers.items():
                if not HEADER_RE.match(name):
                    errors[f"match.headers.{name}"] = ["Not a header name (letters, digits, -)."]
                    continue
                value = _pattern(pattern, f"match.headers.{name}", errors)
                if value is not None:
                    clean[name.lower()] = value
            if clean:
                out["headers"] = clean
    return out


def _rule_group(plane: ComputePlane, group_id: str, errors: Errors) -> RoutingGroup | None:
    group = RoutingGroup.objects.filter(compute_plane=plane, pk=group_id).first()
    if group is None:
        errors["group"] = [f"No routing group {group_id} on this compute plane."]
    return group


def create_rule(*, actor: Actor, plane: ComputePlane, request: RuleRequest) -> RoutingRule:
    errors: Errors = {}
    with transaction.atomic():
        plane = _lock_plane(plane)
        assert request.name is not None
        assert request.group is not None
        _name_free(RoutingRule, plane, request.name, None, errors)
        group = _rule_group(plane, request.group, errors)
        match = clean_match(request.match if request.match is not None else {}, errors)
        if errors:
            raise InvalidInput("The routing rule cannot be created as requested.", errors=errors)
        assert group is not None
        rule = RoutingRule.objects.create(
            organization_id=plane.organization_id,
            compute_plane=plane,
            name=request.name,
            priority=request.priority if request.priority is not None else 100,
            group=group,
            match=match,
        )
        _publish(plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.rule.created",
            target=rule,
            data={"compute_plane": plane.pk, "group": rule.group_id, "priority": rule.priority},
        )
    return rule


def update_rule(*, actor: Actor, rule: RoutingRule, request: RuleRequest) -> RoutingRule:
    errors: Errors = {}
    changed = []
    with transaction.atomic():
        plane = _lock_plane(rule.compute_plane)
        rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
        if request.name is not None and request.name != rule.name:
            _name_free(RoutingRule, plane, request.name, rule.pk, errors)
            rule.name = request.name
            changed.append("name")
        if request.priority is not None:
            rule.priority = request.priority
            changed.append("priority")
        if request.group is not None:
            group = _rule_group(plane, request.group, errors)
            if group is not None:
                rule.group = group
            changed.append("group")
        if request.match is not None:
            rule.match = clean_match(request.match, errors)
            changed.append("match")
        if errors:
            raise InvalidInput("The routing rule cannot be changed as requested.", errors=errors)
        rule.save()
        _publish(plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.rule.updated",
            target=rule,
            data={"compute_plane": plane.pk, "changed": changed},
        )
    return rule


def delete_rule(*, actor: Actor, rule: RoutingRule) -> None:
    with transaction.atomic():
        plane = _lock_plane(rule.compute_plane)
        audit.record(
            actor=actor,
            organization=plane.organization,
            action="gateway.rule.deleted",
            target=rule,
            data={"compute_plane": plane.pk, "name": rule.name},
        )
        rule.delete()
        _publish(plane)
