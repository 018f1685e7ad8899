"""Data access rule sets through the API: validation, who may write, dry runs, audit, and the
rules reaching the cluster's desired state."""

from __future__ import annotations

import pytest

from controlplane.agentapi.models import DesiredState
from controlplane.catalogs.models import CatalogAttachment
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from tests.factories import CatalogFactory, ClusterFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

ANALYSTS = [
    {"effect": "deny", "table": "tpch.sf1.*"},
    {"groups": ["analysts"], "table": "tpch.tiny.*", "privileges": ["read"]},
]


@pytest.fixture
def world(make_caller):
    org = OrganizationFactory(slug="acme")
    cluster = ClusterFactory(organization=org, engine="trino")
    tpch = CatalogFactory(organization=org, name="tpch", connector="tpch")
    CatalogAttachment.objects.create(catalog=tpch, cluster=cluster, organization=org)
    return org, cluster, make_caller(org, Role.ADMIN)


def url(org, rest=""):
    return f"/api/v1/orgs/{org.slug}/access-rule-sets{rest}"


def create(caller, org, cluster, rules=ANALYSTS, **extra):
    body = {"name": "analysts", "rules": rules, "clusters": [cluster.id], **extra}
    return caller.client.post(url(org), body, format="json")


def test_a_rule_set_reaches_the_clusters_desired_state_and_the_audit_log(world):
    org, cluster, admin = world
    response = create(admin, org, cluster)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["clusters"], body["version"]) == ([cluster.id], 1)
    document = DesiredState.objects.get(compute_plane=cluster.compute_plane).document
    [spec] = document["clusters"]
    assert spec["access_rules"]["name"] == "analysts"
    assert spec["access_rules"]["rules"][1]["groups"] == ["analysts"]

    patched = admin.client.patch(
        url(org, f"/{body['id']}"),
        {"rules": [{"table": "tpch.tiny.orders", "privileges": ["read"]}]},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["version"] == 2
    document = DesiredState.objects.get(compute_plane=cluster.compute_plane).document
    assert document["clusters"][0]["access_rules"]["version"] == 2
    event = AuditEvent.objects.get(action="access_rules.updated")
    assert event.data["before"]["rules"][0]["effect"] == "deny"
    assert event.data["after"]["rules"][0]["table"] == "tpch.tiny.orders"

    assert admin.client.delete(url(org, f"/{body['id']}")).status_code == 204
    document = DesiredState.objects.get(compute_plane=cluster.compute_plane).document
    assert document["clusters"][0].get("access_rules") is None
    assert AuditEvent.objects.filter(action="access_rules.deleted").exists()


def test_the_dry_run_says_which_rule_decides(world, make_caller):
    org, cluster, admin = world
    rule_set = create(admin, org, cluster).json()
    viewer = make_caller(org, Role.VIEWER)
    check = url(org, f"/{rule_set['id']}/check")
    ask = {"user": "ann", "groups": ["analysts"], "table": "tpch.tiny.orders", "privilege": "read"}
    answer = viewer.client.post(check, ask, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["allowed"] is True
    assert answer.json()["rule"] == 2
    denied = viewer.client.post(check, {**ask, "table": "tpch.sf1.orders"}, format="json").json()
    assert (denied["allowed"], denied["rule"]) == (False, 1)
    bad = viewer.client.post(check, {**ask, "table": "orders"}, format="json")
    assert bad.status_code == 400
    assert "table" in str(bad.json())


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([{"table": "tpch.tiny", "privileges": ["read"]}], "rules.0.table"),
        ([{"table": "tpch.tiny.*", "privileges": ["select"]}], "rules.0.privileges.0"),
        ([{"effect": "deny", "table": "*.*.*"}], "rules"),  # locks everyone out
        ([{"table": "hive.sales.*", "privileges": ["read"]}], "clusters"),  # not attached
        ("everything", "rules"),
    ],
)
def test_bad_rules_are_422_with_the_field_and_nothing_is_stored(world, rules, field):
    org, cluster, admin = world
    response = create(admin, org, cluster, rules=rules)
    assert response.status_code == 422, response.content
    problem = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in problem["errors"], problem
    assert not DesiredState.objects.filter(compute_plane=cluster.compute_plane).exists()


def test_presto_cannot_enforce_group_rules_or_non_hive_catalogs(world):
    org, _cluster, admin = world
    presto = ClusterFactory(organization=org, engine="presto", version="0.292")
    tpch = org.catalogs.get(name="tpch")
    CatalogAttachment.objects.create(catalog=tpch, cluster=presto, organization=org)
    response = create(admin, org, presto)
    assert response.status_code == 422
    text = " ".join(response.json()["errors"]["rules"])
    assert "groups" in text
    assert "Hive catalogs only" in text


def test_members_cannot_write_rules_and_other_orgs_see_nothing(world, make_caller):
    org, cluster, admin = world
    member = make_caller(org, Role.MEMBER)
    assert create(member, org, cluster).status_code == 403
    rule_set = create(admin, org, cluster).json()
    assert member.client.get(url(org, f"/{rule_set['id']}")).status_code == 200
    stranger = make_caller(OrganizationFactory(), Role.OWNER)
    assert stranger.client.get(url(org, f"/{rule_set['id']}")).status_code == 404
    other = stranger.org
    assert stranger.client.get(url(other, f"/{rule_set['id']}")).status_code == 404
    # Another organization's cluster cannot be named either.
    foreign = create(stranger, other, cluster)
    assert foreign.status_code == 404


def test_a_cluster_enforces_one_rule_set(world):
    org, cluster, admin = world
    assert create(admin, org, cluster).status_code == 201
    second = create(admin, org, cluster, name="second")
    assert second.status_code == 422
    assert "already enforces analysts" in second.json()["errors"]["clusters"][0]
