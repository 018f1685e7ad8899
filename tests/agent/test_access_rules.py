"""Data access rules (computeplane_agent/access.py): the evaluation order, and each engine's
rendered rules file read back by this test's own implementation of the engines' documented
semantics (Trino: security/file-system-access-control; PrestoDB: Hive file-based security)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from computeplane_agent.access import (
    AccessRule,
    decide,
    lockout,
    presto_hive_rules,
    presto_unsupported,
    trino_rules,
)

ENGINE_NAMES = {
    "read": ["SELECT"],
    "write": ["INSERT", "UPDATE", "DELETE"],
    "ownership": ["OWNERSHIP"],
}


def documented_trino(document, *, user, groups, catalog, schema, table, privilege) -> bool:
    """Trino's table rules as its documentation states them: read from the top, the first rule
    whose user, group (at least one of the user's groups), catalog, schema and table regular
    expressions all match decides; absent fields match everything; no match: denied."""
    for rule in document["tables"]:
        if not re.fullmatch(rule.get("user", ".*"), user):
            continue
        if "group" in rule and not any(re.fullmatch(rule["group"], g) for g in groups):
            continue
        values = {"catalog": catalog, "schema": schema, "table": table}
        if not all(re.fullmatch(rule.get(k, ".*"), v) for k, v in values.items()):
            continue
        return all(name in rule["privileges"] for name in ENGINE_NAMES[privilege])
    return False


def documented_presto(document, *, user, schema, table, privilege) -> bool:
    for rule in document["tables"]:
        if re.fullmatch(rule.get("user", ".*"), user) and all(
            re.fullmatch(rule.get(k, ".*"), v) for k, v in (("schema", schema), ("table", table))
        ):
            wanted = [n for n in ENGINE_NAMES[privilege] if n != "UPDATE"]
            return all(name in rule["privileges"] for name in wanted)
    return False


def rule(table, privileges=("read",), effect="allow", users=(), groups=()):
    return AccessRule(
        effect=effect,
        table=table,
        privileges=list(privileges) if effect == "allow" else [],
        users=list(users),
        groups=list(groups),
    )


ANALYSTS = [
    rule("tpch.secret.*", effect="deny"),
    rule("tpch.tiny.*", groups=["analysts"]),
    rule("*.*.*", ("read", "write", "ownership"), users=["admin"]),
]


def test_first_matching_rule_decides_and_says_which():
    d = decide(
        ANALYSTS,
        user="ann",
        groups=frozenset({"analysts"}),
        catalog="tpch",
        schema="tiny",
        table="orders",
        privilege="read",
    )
    assert (d.allowed, d.rule) == (True, 1)
    assert "rule 2" in d.reason
    d = decide(ANALYSTS, user="admin", catalog="tpch", schema="secret", table="x", privilege="read")
    assert (d.allowed, d.rule) == (False, 0)  # the deny comes first, even for the admin
    d = decide(
        ANALYSTS,
        user="ann",
        groups=frozenset({"analysts"}),
        catalog="tpch",
        schema="tiny",
        table="orders",
        privilege="write",
    )
    assert (d.allowed, d.rule) == (False, 1)  # the deciding rule does not grant write
    d = decide(ANALYSTS, user="bob", catalog="tpch", schema="sf1", table="orders", privilege="read")
    assert (d.allowed, d.rule) == (False, None)


def test_malformed_rules_are_refused():
    for bad in (
        {"table": "tpch.tiny", "privileges": ["read"]},
        {"table": "tpch.tiny.*", "privileges": []},
        {"table": "tpch.tiny.*", "effect": "deny", "privileges": ["read"]},
        {"table": "tpch.tiny.*", "privileges": ["select"]},
        {"table": "TPCH.tiny.*", "privileges": ["read"]},
        {"table": "tpch.tiny.*", "privileges": ["read"], "users": ["a b"]},
    ):
        with pytest.raises(ValidationError):
            AccessRule.model_validate(bad)


def test_lockout_and_presto_limits():
    assert lockout([rule("*.*.*", effect="deny")])
    assert not lockout(ANALYSTS)
    problems = presto_unsupported(ANALYSTS, hive_catalogs={"hive"})
    assert any("groups" in p for p in problems)
    assert any("tpch is not one" in p for p in problems)
    assert presto_unsupported([rule("hive.sales.*", users=["ann"])], {"hive"}) == []


def test_trino_document_has_the_documented_shape():
    doc = trino_rules(ANALYSTS)
    assert doc["catalogs"] == [{"allow": "all"}]
    assert doc["tables"][0] == {
        "catalog": "tpch",
        "schema": "secret",
        "table": ".*",
        "privileges": [],
    }
    assert doc["tables"][1]["group"] == "(analysts)"
    assert doc["tables"][2]["privileges"] == ["DELETE", "INSERT", "OWNERSHIP", "SELECT", "UPDATE"]
    assert {"user": "(admin)", "catalog": ".*", "schema": ".*", "owner": True} in doc["schemas"]


NAMES = st.sampled_from(["a", "b", "*"])
PEOPLE = st.sampled_from(["ann", "bob", "cy"])
TEAMS = st.sampled_from(["analysts", "eng"])
RULES = st.lists(
    st.builds(
        lambda c, s, t, effect, privileges, users, groups: rule(
            f"{c}.{s}.{t}", privileges or ["read"], effect, users, groups
        ),
        NAMES,
        NAMES,
        NAMES,
        st.sampled_from(["allow", "deny"]),
        st.lists(st.sampled_from(["read", "write", "ownership"]), unique=True, max_size=3),
        st.lists(PEOPLE, unique=True, max_size=2),
        st.lists(TEAMS, unique=True, max_size=2),
    ),
    min_size=1,
    max_size=6,
)
REQUEST = st.fixed_dictionaries(
    {
        "user": PEOPLE,
        "groups": st.frozensets(TEAMS, max_size=2),
        "catalog": st.sampled_from(["a", "b"]),
        "schema": st.sampled_from(["a", "b"]),
        "table": st.sampled_from(["a", "b"]),
        "privilege": st.sampled_from(["read", "write", "ownership"]),
    }
)


@settings(max_examples=400, deadline=None)
@given(RULES, REQUEST)
def test_the_dry_run_and_the_rendered_trino_file_agree(rules, request):
    assert decide(rules, **request).allowed == documented_trino(trino_rules(rules), **request)


@settings(max_examples=300, deadline=None)
@given(RULES, REQUEST)
def test_the_dry_run_and_the_rendered_presto_file_agree(rules, request):
    # What PrestoDB can enforce: users only (presto_unsupported refuses groups), one Hive catalog.
    rules = [r.model_copy(update={"groups": []}) for r in rules]
    request = {**request, "groups": frozenset()}
    if request["privilege"] == "write":
        request["privilege"] = "read"  # PrestoDB has no UPDATE privilege to compare
    catalog = request["catalog"]
    expected = decide(rules, **request).allowed
    doc = presto_hive_rules(rules, catalog)
    got = documented_presto(
        doc,
        user=request["user"],
        schema=request["schema"],
        table=request["table"],
        privilege=request["privilege"],
    )
    assert expected == got


# --- rendering into the cluster's objects --------------------------------------------------------


def _rendered(engine: str, rules: list[AccessRule]):
    import kubernetes_validate

    from computeplane_agent.access import AccessRules
    from computeplane_agent.render import render_cluster
    from tests.agent.factories import catalog_specs, cluster_spec
    from tests.agent.test_render import KUBERNETES_VERSIONS

    catalogs = catalog_specs()
    spec = cluster_spec(
        engine=engine,
        version="0.292" if engine == "presto" else "476",
        catalogs=[c.id for c in catalogs],
        access_rules=AccessRules(name="analysts", version=3, rules=rules),
    )
    objects = render_cluster(spec, vpc_cidr="10.42.0.0/16", catalogs=catalogs)
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def _one(objects, kind, suffix):
    [found] = [o for (k, name), o in objects.items() if k == kind and name.endswith(suffix)]
    return found


def test_trino_enforces_the_rules_file_and_a_rule_change_is_no_restart():
    import json

    hive_only = [
        rule("hive.sales.*", groups=["analysts"]),
        rule("*.*.*", ("read",), users=["admin"]),
    ]
    objects = _rendered("trino", hive_only)
    rules_map = _one(objects, "ConfigMap", "-access-rules")
    assert json.loads(rules_map["data"]["rules.json"]) == trino_rules(hive_only)
    config = _one(objects, "ConfigMap", "-coordinator-config")["data"]["access-control.properties"]
    assert "access-control.name=file" in config
    assert "security.config-file=/etc/trino/access/rules.json" in config
    assert "security.refresh-period=10s" in config
    coordinator = _one(objects, "Deployment", "-coordinator")["spec"]["template"]
    mounts = coordinator["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "access-rules", "mountPath": "/etc/trino/access", "readOnly": True} in mounts

    changed = _rendered("trino", [rule("hive.sales.*", ("read", "write"), groups=["analysts"])])
    again = _one(changed, "Deployment", "-coordinator")["spec"]["template"]
    # Same pod template (no rolling restart); only the rules ConfigMap differs.
    assert again["metadata"]["annotations"] == coordinator["metadata"]["annotations"]
    assert _one(changed, "ConfigMap", "-access-rules") != rules_map


def test_presto_enforces_the_rules_per_hive_catalog():
    import json

    rules = [rule("hive.sales.*", users=["ann"]), rule("*.*.*", effect="deny")]
    objects = _rendered("presto", rules)
    data = _one(objects, "ConfigMap", "-access-rules")["data"]
    assert set(data) == {"hive.json"}  # PrestoDB has table rules for Hive catalogs only
    assert json.loads(data["hive.json"]) == presto_hive_rules(rules, "hive")
    hive = _one(objects, "ConfigMap", "-catalog")["data"]["hive.properties"]
    assert "hive.security=file" in hive
    assert "security.config-file=/opt/presto-server/etc/access/hive.json" in hive
