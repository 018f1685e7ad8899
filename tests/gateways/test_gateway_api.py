"""The gateway's control-plane API: settings, routing groups and rules with field errors, the
desired state they publish, and the dry run through the gateway's own routing function."""

from __future__ import annotations

import pytest

from controlplane.agentapi.services import current_desired_state
from controlplane.clusters.models import Cluster
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from controlplane.gateways.models import RoutingGroup
from tests.factories import ClusterFactory, ComputePlaneFactory, OrganizationFactory
from tests.gateways.conftest import make_group, make_rule

pytestmark = pytest.mark.django_db


def errors_of(response) -> dict:
    assert response["Content-Type"] == "application/problem+json", response.content
    return response.json()["errors"]


# --- the gateway itself -----------------------------------------------------------------------


def test_an_unconfigured_plane_has_a_gateway_over_all_its_clusters(owner, gw):
    body = owner.client.get(gw.url()).json()
    assert body["enabled"] is True
    assert body["replicas"] == 2
    assert body["status"] == "pending"  # no agent report yet
    assert body["endpoint"] is None
    assert body["routing_groups"] == []
    assert body["rules"] == []
    assert body["query_text_retention"] == {"enabled": False, "days": 30}

    spec = current_desired_state(gw.plane).gateway
    # Nothing published yet for this plane; after any publish the implicit group is there.
    from controlplane.clusters.desired import publish_plane

    spec = publish_plane(gw.plane).gateway
    assert spec is not None
    assert spec.enabled
    assert spec.default_group == "default"
    assert [(g.name, g.clusters) for g in spec.routing_groups] == [
        ("default", sorted([gw.etl.id, gw.adhoc.id, gw.spare.id]))
    ]
    assert spec.query_text is False


def test_patch_needs_an_admin_and_is_audited(owner, gw, make_caller):
    member = make_caller(owner.org, Role.MEMBER)
    response = member.client.patch(gw.url(), {"replicas": 3}, format="json")
    assert response.status_code == 403

    response = owner.client.patch(
        gw.url(),
        {
            "replicas": 3,
            "query_text_retention": {"enabled": True, "days": 7},
            "health": {"fail_threshold": 5},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["replicas"] == 3
    assert body["query_text_retention"] == {"enabled": True, "days": 7}
    assert body["health"]["fail_threshold"] == 5
    assert body["health"]["success_threshold"] == 2
    event = AuditEvent.objects.get(action="gateway.updated")
    assert event.data["changed"] == ["health", "query_text_retention", "replicas"]
    spec = current_desired_state(gw.plane).gateway
    assert spec.replicas == 3
    assert spec.query_text is True
    assert spec.health.fail_threshold == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": "2"}, "replicas"),
        ({"default_group": "rg_nosuchgroup"}, "default_group"),
        ({"query_text_retention": {"days": 0}}, "query_text_retention.days"),
        ({"health": {"fail_threshold": 0}}, "health.fail_threshold"),
        ({"health": {"surprise": 1}}, "health.surprise"),
        ({"wake": {"max_wait_seconds": -1}}, "wake.max_wait_seconds"),
    ],
)
def test_bad_gateway_settings_are_field_errors(owner, gw, body, field):
    response = owner.client.patch(gw.url(), body, format="json")
    assert response.status_code in (400, 422), response.content
    assert field in errors_of(response)


def test_another_orgs_plane_is_not_found(owner, gw, make_caller):
    stranger = make_caller(OrganizationFactory(), Role.OWNER)
    own = f"/api/v1/orgs/{stranger.org.slug}/compute-planes/{gw.plane.id}/gateway"
    for tail in ("", "/routing-groups", "/rules"):
        assert stranger.client.get(own + tail).status_code == 404
    response = stranger.client.post(own + "/route?dry_run=true", {"user": "x"}, format="json")
    assert response.status_code == 404


# --- routing groups ---------------------------------------------------------------------------


def test_groups_are_created_listed_and_published(owner, gw):
    spare = make_group(owner.client, gw, "spare", [gw.spare.id])
    etl = make_group(owner.client, gw, "etl", [gw.etl.id, gw.adhoc.id], fallback=spare["id"])
    assert etl["clusters"] == sorted([gw.etl.id, gw.adhoc.id])
    assert etl["fallback"] == spare["id"]
    listed = owner.client.get(gw.url("/routing-groups")).json()["results"]
    assert [g["name"] for g in listed] == ["etl", "spare"]
    assert AuditEvent.objects.filter(action="gateway.routing_group.created").count() == 2

    spec = current_desired_state(gw.plane).gateway
    assert [(g.name, g.fallback) for g in spec.routing_groups] == [
        ("etl", "spare"),
        ("spare", None),
    ]
    assert spec.default_group is None  # no implicit group once groups exist


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "name"),
        ({"name": "empty", "clusters": []}, "clusters"),
        ({"name": "typo", "clusters": ["cl_nosuchcluster"]}, "clusters.0"),
        ({"name": "twice", "clusters": ["SAME", "SAME"]}, "clusters"),
        ({"name": "bad-fallback", "clusters": ["ETL"], "fallback": "rg_nosuchgroup"}, "fallback"),
        ({"name": "flag", "clusters": ["ETL"], "prefer_cache": "yes"}, "prefer_cache"),
    ],
)
def test_bad_groups_are_field_errors(owner, gw, body, field):
    body = dict(body)
    if "clusters" in body:
        body["clusters"] = [gw.etl.id if c in ("ETL", "SAME") else c for c in body["clusters"]]
    response = owner.client.post(gw.url("/routing-groups"), body, format="json")
    assert response.status_code in (400, 422), response.content
    assert field in errors_of(response)
    assert not RoutingGroup.objects.exists()


def test_a_group_cannot_hold_another_orgs_or_another_planes_cluster(owner, gw):
    foreign = ClusterFactory(organization=OrganizationFactory())
    elsewhere = ClusterFactory(
        organization=owner.org, compute_plane=ComputePlaneFactory(organization=owner.org)
    )
    response = owner.client.post(
        gw.url("/routing-groups"),
        {"name": "mixed", "clusters": [gw.etl.id, foreign.id, elsewhere.id]},
        format="json",
    )
    assert response.status_code == 422
    errors = errors_of(response)
    assert set(errors) == {"clusters.1", "clusters.2"}
    # Another organization's cluster is reported exactly like a missing one.
    assert errors["clusters.1"] == [f"No cluster {foreign.id} on this compute plane."]


def test_a_fallback_chain_cannot_come_back(owner, gw):
    a = make_group(owner.client, gw, "ga", [gw.etl.id])
    b = make_group(owner.client, gw, "gb", [gw.adhoc.id], fallback=a["id"])
    c = make_group(owner.client, gw, "gc", [gw.spare.id], fallback=b["id"])
    for target, fallback in ((a, c), (a, a)):
        response = owner.client.patch(
            gw.url(f"/routing-groups/{target['id']}"), {"fallback": fallback["id"]}, format="json"
        )
        assert response.status_code == 422, response.content
        assert "fallback" in errors_of(response)
    assert RoutingGroup.objects.get(pk=a["id"]).fallback_id is None


def test_a_group_in_use_cannot_be_deleted(owner, gw):
    a = make_group(owner.client, gw, "ga", [gw.etl.id])
    b = make_group(owner.client, gw, "gb", [gw.adhoc.id], fallback=a["id"])
    make_rule(owner.client, gw, "to-a", a["id"], {"user": "etl-.*"})
    response = owner.client.delete(gw.url(f"/routing-groups/{a['id']}"))
    assert response.status_code == 409
    assert "rule to-a" in response.json()["detail"]
    assert "group gb" in response.json()["detail"]
    assert owner.client.delete(gw.url(f"/routing-groups/{b['id']}")).status_code == 204
    assert not RoutingGroup.objects.filter(pk=b["id"]).exists()


def test_a_deleted_cluster_leaves_its_groups_in_the_desired_state(owner, gw):
    only = make_group(owner.client, gw, "only", [gw.spare.id])
    main = make_group(owner.client, gw, "main", [gw.etl.id], fallback=only["id"])
    make_rule(owner.client, gw, "to-only", only["id"], {"source": "bi"})
    owner.client.patch(gw.url(), {"default_group": only["id"]}, format="json")
    Cluster.objects.filter(pk=gw.spare.id).update(status="deleting")
    from controlplane.clusters.desired import publish_plane

    spec = publish_plane(gw.plane).gateway
    assert [(g.name, g.fallback) for g in spec.routing_groups] == [("main", None)]
    assert spec.rules == []
    assert spec.default_group is None
    assert main["id"]


def test_viewers_read_and_dry_run_but_do_not_write(owner, gw, make_caller):
    viewer = make_caller(owner.org, Role.VIEWER)
    assert viewer.client.get(gw.url("/routing-groups")).status_code == 200
    response = viewer.client.post(
        gw.url("/routing-groups"), {"name": "v", "clusters": [gw.etl.id]}, format="json"
    )
    assert response.status_code == 403
    response = viewer.client.post(gw.url("/route?dry_run=true"), {}, format="json")
    assert response.status_code == 200, response.content


# --- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"group": "rg_nosuchgroup"}, "group"),
        ({"match": {"user": "etl-(("}}, "match.user"),
        ({"match": {"colour": "blue"}}, "match.colour"),
        ({"match": {"client_tags": "etl"}}, "match.client_tags"),
        ({"match": {"headers": {"X Bad": "a"}}}, "match.headers.X Bad"),
        ({"match": {"headers": {"X-Team": "[z-a]"}}}, "match.headers.X-Team"),
        ({"match": {"schema": ""}}, "match.schema"),
        ({"match": ["user"]}, "match"),
        ({"priority": -1}, "priority"),
        ({"name": "Not A Name"}, "name"),
    ],
)
def test_malformed_rules_are_field_errors(owner, gw, body, field):
    group = make_group(owner.client, gw, "etl", [gw.etl.id])
    rule = {"name": "r1", "group": group["id"], "match": {"user": "etl"}, **body}
    response = owner.client.post(gw.url("/rules"), rule, format="json")
    assert response.status_code in (400, 422), response.content
    assert field in errors_of(response)


def test_a_rule_naming_another_planes_group_is_refused(owner, gw):
    other = ComputePlaneFactory(organization=owner.org)
    foreign = RoutingGroup.objects.create(
        organization=owner.org, compute_plane=other, name="elsewhere"
    )
    response = owner.client.post(
        gw.url("/rules"), {"name": "r1", "group": foreign.id}, format="json"
    )
    assert response.status_code == 422
    assert errors_of(response) == {
        "group": [f"No routing group {foreign.id} on this compute plane."]
    }


def test_rules_list_in_priority_order_and_reach_the_desired_state(owner, gw):
    group = make_group(owner.client, gw, "etl", [gw.etl.id])
    make_rule(owner.client, gw, "zeta", group["id"], {"user": "a"}, priority=5)
    make_rule(owner.client, gw, "alpha", group["id"], {"user": "b"}, priority=10)
    make_rule(owner.client, gw, "beta", group["id"], {"user": "c"}, priority=5)
    listed = owner.client.get(gw.url("/rules")).json()["results"]
    assert [r["name"] for r in listed] == ["beta", "zeta", "alpha"]
    spec = current_desired_state(gw.plane).gateway
    assert [r.name for r in spec.rules] == ["beta", "zeta", "alpha"]

    rule = listed[0]
    response = owner.client.patch(
        gw.url(f"/rules/{rule['id']}"),
        {"priority": 50, "match": {"schema": "sf1", "headers": {"X-Team": "data"}}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["match"] == {"schema": "sf1", "headers": {"x-team": "data"}}
    spec = current_desired_state(gw.plane).gateway
    beta = next(r for r in spec.rules if r.name == "beta")
    assert beta.match.schema_name == "sf1"
    assert beta.match.headers == {"x-team": "data"}
    assert owner.client.delete(gw.url(f"/rules/{rule['id']}")).status_code == 204
    assert AuditEvent.objects.filter(action="gateway.rule.deleted").count() == 1


# --- the dry run --------------------------------------------------------------------------------


def route(client, gw, **facts):
    response = client.post(gw.url("/route?dry_run=true"), facts, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_dry_run_follows_rule_order_then_the_default(owner, gw):
    etl = make_group(owner.client, gw, "etl", [gw.etl.id])
    adhoc = make_group(owner.client, gw, "adhoc", [gw.adhoc.id])
    make_rule(owner.client, gw, "etl-users", etl["id"], {"user": "etl-.*"}, priority=10)
    make_rule(owner.client, gw, "bi-tools", adhoc["id"], {"source": "superset"}, priority=20)
    owner.client.patch(gw.url(), {"default_group": adhoc["id"]}, format="json")

    decision = route(owner.client, gw, user="etl-nightly", source="superset")
    assert (decision["group"], decision["cluster"]) == ("etl", gw.etl.id)
    assert decision["reasons"][0].startswith("Rule 'etl-users' (priority 10) matched")

    decision = route(owner.client, gw, user="alice", source="superset")
    assert (decision["group"], decision["cluster"]) == ("adhoc", gw.adhoc.id)
    assert "did not match" in decision["reasons"][0]

    decision = route(owner.client, gw, user="alice")
    assert decision["group"] == "adhoc"
    assert any("default group 'adhoc'" in r for r in decision["reasons"])


def test_dry_run_falls_back_and_wakes_a_sleeping_group(owner, gw):
    spare = make_group(owner.client, gw, "spare", [gw.spare.id])
    etl = make_group(owner.client, gw, "etl", [gw.etl.id], fallback=spare["id"])
    make_rule(owner.client, gw, "all", etl["id"], {})
    Cluster.objects.filter(pk=gw.etl.id).update(status="failed")
    Cluster.objects.filter(pk=gw.spare.id).update(status="starting")
    decision = route(owner.client, gw, user="u")
    # etl's only cluster is down, spare's is coming up: never a random cluster.
    assert decision["cluster"] is None
    assert any("is down (the cluster failed)" in r for r in decision["reasons"])
    assert any("falling back to group 'spare'" in r for r in decision["reasons"])
    assert decision["wake"] == gw.spare.id  # the gateway waits for the one on its way up

    Cluster.objects.filter(pk=gw.spare.id).update(status="running")
    decision = route(owner.client, gw, user="u")
    assert (decision["group"], decision["cluster"]) == ("spare", gw.spare.id)

    Cluster.objects.filter(pk__in=[gw.etl.id, gw.spare.id]).update(status="stopped")
    decision = route(owner.client, gw, user="u")
    assert decision["wake"] == gw.etl.id
    assert decision["cluster"] is None


def test_dry_run_matches_headers_tags_catalog_and_schema(owner, gw):
    etl = make_group(owner.client, gw, "etl", [gw.etl.id])
    make_rule(
        owner.client,
        gw,
        "tagged",
        etl["id"],
        {
            "client_tags": ["nightly"],
            "headers": {"X-Team": "data"},
            "catalog": "tpch",
            "schema": "tiny",
        },
    )
    decision = route(
        owner.client,
        gw,
        client_tags=["nightly", "x"],
        headers={"x-team": "data"},
        catalog="tpch",
        schema="tiny",
    )
    assert decision["cluster"] == gw.etl.id
    decision = route(owner.client, gw, client_tags=["nightly"], catalog="tpch", schema="tiny")
    assert decision["cluster"] is None
    assert "header x-team" in decision["reasons"][0]


def test_dry_run_is_only_a_dry_run(owner, gw):
    response = owner.client.post(gw.url("/route"), {"user": "u"}, format="json")
    assert response.status_code == 400
    assert "dry_run" in errors_of(response)
    response = owner.client.post(
        gw.url("/route?dry_run=true"), {"client_tags": "nightly"}, format="json"
    )
    assert response.status_code == 400
    assert "client_tags" in errors_of(response)
