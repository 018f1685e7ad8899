"""The write path for data access rules: validate, write, audit with before/after, publish.

A rule set is validated as a whole before anything is stored or sent (docs/access-rules.md):
every rule parses; the set lets at least someone do something (a set that locks every user out
is refused); on each cluster it is attached to, every catalog it names is attached to that
cluster and, on PrestoDB, the engine can enforce it as written. A change, the version bump and
the new desired state of every plane with an attached cluster are one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from computeplane_agent import access
from controlplane.access.models import RuleSet, RuleSetAttachment
from controlplane.catalogs.models import CatalogAttachment
from controlplane.catalogs.services import publish_planes
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.core import audit
from controlplane.core.audit import Actor
from controlplane.core.errors import InvalidInput, NotFound
from controlplane.core.naming import ensure_name_free
from controlplane.tenancy.models import Organization

GONE = (ClusterStatus.DELETING, ClusterStatus.DELETED)


def parse_rules(raw: Any) -> list[access.AccessRule]:
    """The rules as the contract reads them; 422 with a field per problem otherwise."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(
            "A rule set needs at least one rule.", errors={"rules": ["Give a list of rules."]}
        )
    if len(raw) > access.MAX_RULES:
        raise InvalidInput(
            "Too many rules.", errors={"rules": [f"At most {access.MAX_RULES} rules."]}
        )
    rules: list[access.AccessRule] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(raw):
        try:
            rules.append(access.AccessRule.model_validate(item))
        except ValidationError as exc:
            for problem in exc.errors():
                where = ".".join(str(p) for p in ("rules", index, *problem["loc"]))
                errors.setdefault(where, []).append(problem["msg"])
    if errors:
        raise InvalidInput("The rules do not parse.", errors=errors)
    if access.lockout(rules):
        raise InvalidInput(
            "These rules would lock every user out.",
            errors={"rules": ["No rule allows anything to anyone; add an allow rule."]},
        )
    return rules


def _live_clusters(organization: Organization, ids: list[str]) -> list[Cluster]:
    unique = list(dict.fromkeys(ids))
    found = {
        c.pk: c
        for c in Cluster.objects.filter(
            organization=organization, pk__in=unique, deleted_at__isnull=True
        ).exclude(status__in=GONE)
    }
    missing = [i for i in unique if i not in found]
    if missing:
        raise NotFound(
            "No such cluster.", errors={"clusters": [f"No cluster {i} here." for i in missing]}
        )
    return [found[i] for i in unique]


def check_fits(rules: list[access.AccessRule], clusters: list[Cluster]) -> None:
    """Every catalog the rules name is attached to each cluster; PrestoDB can enforce them."""
    named = access.catalogs_named(rules)
    attached: dict[str, dict[str, str]] = {c.pk: {} for c in clusters}
    for cluster_id, name, connector in CatalogAttachment.objects.filter(
        cluster__in=clusters, catalog__deleted_at__isnull=True
    ).values_list("cluster_id", "catalog__name", "catalog__connector"):
        attached[cluster_id][name] = connector
    errors: dict[str, list[str]] = {}
    for cluster in clusters:
        catalogs = attached[cluster.pk]
        for name in sorted(named - set(catalogs)):
            errors.setdefault("clusters", []).append(
                f"{cluster.name} ({cluster.pk}) does not attach the catalog {name}."
            )
        if cluster.engine == "presto":
            hive = {n for n, connector in catalogs.items() if connector == "hive"}
            for problem in access.presto_unsupported(rules, hive):
                errors.setdefault("rules", []).append(f"{cluster.name}: {problem}")
    if errors:
        raise InvalidInput("The rules do not fit the clusters they are attached to.", errors=errors)


def _publish(cluster_ids: set[str]) -> None:
    publish_planes(
        list(ComputePlane.objects.filter(clusters__pk__in=cluster_ids).distinct().order_by("id"))
    )


def _snapshot(rule_set: RuleSet, clusters: list[str]) -> dict[str, Any]:
    return {"name": rule_set.name, "rules": rule_set.rules, "clusters": sorted(clusters)}


def _attached(rule_set: RuleSet) -> list[str]:
    return sorted(rule_set.attachments.values_list("cluster_id", flat=True))


def _attach(rule_set: RuleSet, clusters: list[Cluster]) -> None:
    taken = (
        RuleSetAttachment.objects.filter(cluster__in=clusters)
        .exclude(rule_set=rule_set)
        .select_related("rule_set", "cluster")
    )
    if taken:
        raise InvalidInput(
            "A cluster enforces one rule set.",
            errors={
                "clusters": [
                    f"{a.cluster.name} ({a.cluster_id}) already enforces {a.rule_set.name}."
                    for a in taken
                ]
            },
        )
    RuleSetAttachment.objects.filter(rule_set=rule_set).exclude(cluster__in=clusters).delete()
    for cluster in clusters:
        RuleSetAttachment.objects.get_or_create(rule_set=rule_set, cluster=cluster)


def create_rule_set(
    *, actor: Actor, organization: Organization, name: str, rules: Any, clusters: list[str]
) -> RuleSet:
    parsed = parse_rules(rules)
    with transaction.atomic():
        targets = _live_clusters(organization, clusters)
        check_fits(parsed, targets)
        ensure_name_free(RuleSet, organization.pk, name)
        rule_set = RuleSet.objects.create(
            organization=organization,
            name=name,
            rules=[r.model_dump(mode="json") for r in parsed],
        )
        _attach(rule_set, targets)
        audit.record(
            actor=actor,
            organization=organization,
            action="access_rules.created",
            target=rule_set,
            data={"after": _snapshot(rule_set, [c.pk for c in targets]), "version": 1},
        )
        _publish({c.pk for c in targets})
    return rule_set


def update_rule_set(*, actor: Actor, rule_set: RuleSet, changes: Mapping[str, Any]) -> RuleSet:
    """``changes``: any of name, rules (the whole list), clusters (the whole list)."""
    with transaction.atomic():
        locked = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
        if locked.deleted_at is not None:
            raise NotFound("No such rule set.")
        before_clusters = _attached(locked)
        before = _snapshot(locked, before_clusters)
        parsed = parse_rules(changes["rules"]) if "rules" in changes else parse_rules(locked.rules)
        cluster_ids = changes.get("clusters", before_clusters)
        targets = _live_clusters(locked.organization, cluster_ids)
        check_fits(parsed, targets)
        name = changes.get("name", locked.name)
        if name != locked.name:
            ensure_name_free(RuleSet, locked.organization_id, name, exclude=locked.pk)
        locked.name = name
        locked.rules = [r.model_dump(mode="json") for r in parsed]
        after = _snapshot(locked, [c.pk for c in targets])
        if after == before:
            return locked
        locked.version += 1
        locked.save()
        _attach(locked, targets)
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="access_rules.updated",
            target=locked,
            data={"before": before, "after": after, "version": locked.version},
        )
        _publish(set(before_clusters) | {c.pk for c in targets})
    return locked


def delete_rule_set(*, actor: Actor, rule_set: RuleSet) -> None:
    """Detaches it everywhere: those clusters go back to the engine's default access control."""
    with transaction.atomic():
        locked = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
        if locked.deleted_at is not None:
            raise NotFound("No such rule set.")
        clusters = _attached(locked)
        before = _snapshot(locked, clusters)
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["deleted_at", "updated_at"])
        RuleSetAttachment.objects.filter(rule_set=locked).delete()
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="access_rules.deleted",
            target=locked,
            data={"before": before},
        )
        _publish(set(clusters))


def dry_run(
    rule_set: RuleSet, *, user: str, groups: list[str], table: str, privilege: str
) -> access.Decision:
    catalog, schema, name = table.split(".")
    return access.decide(
        parse_rules(rule_set.rules),
        user=user,
        groups=frozenset(groups),
        catalog=catalog,
        schema=schema,
        table=name,
        privilege=privilege,  # type: ignore[arg-type]
    )


def rules_for_cluster(cluster_ids: list[str]) -> dict[str, access.AccessRules]:
    """The contract's rules per cluster id, for the desired state (one query)."""
    out = {}
    for a in RuleSetAttachment.objects.filter(
        cluster_id__in=cluster_ids, rule_set__deleted_at__isnull=True
    ).select_related("rule_set"):
        out[a.cluster_id] = access.AccessRules(
            name=a.rule_set.name,
            version=a.rule_set.version,
            rules=[access.AccessRule.model_validate(r) for r in a.rule_set.rules],
        )
    return out
