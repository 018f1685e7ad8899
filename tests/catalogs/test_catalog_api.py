"""Catalogs through the API: validation users see (422 with field errors), names, tenancy,
roles, deletion rules, and a change reaching every attached cluster's compute plane."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from computeplane_agent.connectors import CONNECTORS, ENGINES
from controlplane.agentapi.models import DesiredState
from controlplane.catalogs import services
from controlplane.catalogs.models import Catalog, CatalogAttachment
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from tests.catalogs.test_connectors import ARN, VALID
from tests.factories import (
    ComputePlaneFactory,
    MetastoreFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def url(caller, cat_id: str | None = None) -> str:
    base = f"/api/v1/orgs/{caller.org.slug}/catalogs"
    return f"{base}/{cat_id}" if cat_id else base


def body(name: str, connector: str, metastore: str | None = None, **extra):
    properties, secrets = VALID[connector]
    return {
        "name": name,
        "connector": connector,
        "metastore": metastore,
        "properties": dict(properties),
        "secrets": dict(secrets),
        **extra,
    }


@pytest.fixture
def metastore(org, plane):
    return MetastoreFactory(organization=org, compute_plane=plane)


def _metastore_for(connector: str, metastore) -> str | None:
    return metastore.id if CONNECTORS[connector].uses_metastore else None


def test_connectors_endpoint_serves_the_registry(member, client):
    response = member.client.get("/api/v1/connectors")
    assert response.status_code == 200
    by_name = {c["name"]: c for c in response.json()}
    assert set(VALID) <= set(by_name)
    assert by_name["hive"]["engines"] == {"presto": "hive-hadoop2", "trino": "hive"}
    assert client.get("/api/v1/connectors").status_code in (401, 403)
    schema = member.client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/connectors" in schema["paths"]


@pytest.mark.parametrize("connector", sorted(VALID))
def test_every_connector_accepts_its_valid_example(connector, member, metastore):
    response = member.client.post(
        url(member), body("sales", connector, _metastore_for(connector, metastore)), format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["id"].startswith("cat_")
    assert data["version"] == 1
    assert data["secrets"] == VALID[connector][1]
    assert data["clusters"] == []
    assert data["propagation"] == []
    # Stored as catalog files hold them: booleans lowercase, enums uppercase, numbers as text.
    assert all(isinstance(v, str) for v in data["properties"].values())
    assert AuditEvent.objects.filter(action="catalog.created", target_id=data["id"]).exists()


def _engine_named_property(connector: str) -> tuple[str, str]:
    for prop in CONNECTORS[connector].properties:
        for engine in ENGINES:
            name = prop.engine_name(engine)
            if name and name != prop.key and not prop.credential:
                return name, prop.key
    raise AssertionError(f"{connector} has no engine-specific property name")


@pytest.mark.parametrize("connector", sorted(VALID))
def test_typical_mistakes_are_422_with_field_errors(connector, member, metastore):
    spec = CONNECTORS[connector]
    ms = _metastore_for(connector, metastore)

    def post(payload):
        response = member.client.post(url(member), payload, format="json")
        assert response.status_code == 422, response.content
        assert response["Content-Type"] == "application/problem+json"
        return response.json()["errors"]

    # An unknown key, with a suggestion.
    good = spec.properties[0].key
    typo = good[:-1] + ("x" if good[-1] != "x" else "y")
    payload = body("sales", connector, ms)
    payload["properties"][typo] = "1"
    assert f"Did you mean '{good}'?" in post(payload)[f"properties.{typo}"][0]

    # An engine's property name instead of the neutral key.
    engine_name, key = _engine_named_property(connector)
    payload = body("sales", connector, ms)
    payload["properties"][engine_name] = payload["properties"].pop(key, "1")
    assert f"use '{key}'" in post(payload)[f"properties.{engine_name}"][0]

    # A missing required key (JDBC) or a missing metastore (lake connectors).
    required = [p.key for p in spec.properties if p.required and not p.credential]
    if required:
        payload = body("sales", connector, ms)
        del payload["properties"][required[0]]
        assert "is required" in post(payload)[f"properties.{required[0]}"][0]
    if spec.uses_metastore:
        assert "needs a metastore" in post(body("sales", connector, None))["metastore"][0]

    # A plaintext credential.
    credentials = [p.key for p in spec.properties if p.credential]
    if credentials:
        payload = body("sales", connector, ms)
        payload["secrets"].pop(credentials[0], None)
        payload["properties"][credentials[0]] = "hunter2"
        errors = post(payload)
        assert "is a credential" in errors[f"properties.{credentials[0]}"][0]
        payload["properties"].pop(credentials[0])
        payload["secrets"][credentials[0]] = "hunter2"
        assert "Secrets Manager ARN" in post(payload)[f"secrets.{credentials[0]}"][0]
    assert not Catalog.objects.exists()


@pytest.mark.parametrize("name", ["Sales", "1sales", "sales-db", "s" * 64, "_x"])
def test_names_are_presto_identifiers(name, member):
    response = member.client.post(url(member), body(name, "tpch"), format="json")
    assert response.status_code in (400, 422)
    assert "name" in response.json()["errors"]


def test_names_are_unique_among_live_catalogs(member, make_caller):
    first = member.client.post(url(member), body("sales", "tpch"), format="json").json()
    again = member.client.post(url(member), body("sales", "tpch"), format="json")
    assert again.status_code == 422
    assert again.json()["errors"]["name"] == ["'sales' already exists."]
    # Another org may use the name; a deleted catalog frees it.
    other = make_caller(OrganizationFactory(), Role.MEMBER)
    assert other.client.post(url(other), body("sales", "tpch"), format="json").status_code == 201
    assert member.client.delete(url(member, first["id"])).status_code == 204
    assert member.client.post(url(member), body("sales", "tpch"), format="json").status_code == 201


def test_a_foreign_metastore_is_404_like_a_missing_one(member, make_caller):
    foreign = MetastoreFactory(organization=OrganizationFactory())
    for metastore_id in (foreign.id, "ms_doesnotexist"):
        response = member.client.post(
            url(member), body("lake", "hive", metastore_id), format="json"
        )
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
    created = member.client.post(url(member), body("lake2", "tpch"), format="json").json()
    response = member.client.patch(
        url(member, created["id"]), {"metastore": foreign.id}, format="json"
    )
    assert response.status_code == 404


def test_viewers_read_members_write(org, make_caller, member):
    viewer = make_caller(org, Role.VIEWER, via="token")
    created = member.client.post(url(member), body("sales", "tpch"), format="json").json()
    assert viewer.client.get(url(viewer)).status_code == 200
    assert viewer.client.get(url(viewer, created["id"])).status_code == 200
    assert viewer.client.post(url(viewer), body("other", "tpch"), format="json").status_code == 403
    assert (
        viewer.client.patch(url(viewer, created["id"]), {"name": "x"}, format="json").status_code
        == 403
    )
    assert viewer.client.delete(url(viewer, created["id"])).status_code == 403


def test_deleting_a_catalog_on_a_live_cluster_is_409(member, clusters):
    created = member.client.post(url(member), body("sales", "tpch"), format="json").json()
    catalog = Catalog.objects.get(pk=created["id"])
    (cluster,) = clusters(1)
    assert services.set_cluster_catalogs(cluster, [catalog]) is True
    assert services.set_cluster_catalogs(cluster, [catalog]) is False
    response = member.client.delete(url(member, catalog.id))
    assert response.status_code == 409
    assert response.json()["errors"]["clusters"] == [cluster.id]
    # Once the cluster is deleted the catalog can go.
    cluster.status, cluster.deleted_at = "deleted", cluster.created_at
    cluster.save()
    assert member.client.delete(url(member, catalog.id)).status_code == 204
    assert member.client.get(url(member, catalog.id)).status_code == 404


def test_resolve_catalogs_refuses_foreign_ids(org, member):
    created = member.client.post(url(member), body("sales", "tpch"), format="json").json()
    foreign = Catalog.objects.create(organization=OrganizationFactory(), name="x", connector="tpch")
    assert [c.id for c in services.resolve_catalogs(org, [created["id"]])] == [created["id"]]
    from controlplane.core.errors import NotFound

    with pytest.raises(NotFound):
        services.resolve_catalogs(org, [created["id"], foreign.id])


def _desired_catalog_versions(plane) -> dict[str, int]:
    row = DesiredState.objects.get(pk=plane.id)
    return {c["id"]: c["version"] for c in row.document["catalogs"]}


def test_a_change_reaches_every_attached_plane_and_resets_propagation(member, org, clusters, plane):
    created = member.client.post(url(member), body("sales", "tpch"), format="json").json()
    catalog = Catalog.objects.get(pk=created["id"])
    other_plane = ComputePlaneFactory(organization=org)
    attached = [*clusters(2), *clusters(1, on=other_plane)]
    for cluster in attached:
        services.set_cluster_catalogs(cluster, [catalog])
    CatalogAttachment.objects.update(status="live", live_version=1)

    # No change, no new version and no publish.
    same = member.client.patch(
        url(member, catalog.id),
        {"properties": {"splits-per-node": "4", "column-naming": "standard"}},
        format="json",
    )
    assert same.status_code == 200
    assert same.json()["version"] == 1
    assert not DesiredState.objects.exists()

    changed = member.client.patch(
        url(member, catalog.id), {"properties": {"splits-per-node": 8}}, format="json"
    ).json()
    assert changed["version"] == 2
    assert changed["properties"] == {"splits-per-node": "8"}
    assert sorted(changed["clusters"]) == sorted(c.id for c in attached)
    assert {p["status"] for p in changed["propagation"]} == {"pending"}
    for p in (plane, other_plane):
        assert _desired_catalog_versions(p) == {catalog.id: 2}
    assert AuditEvent.objects.filter(action="catalog.updated", target_id=catalog.id).count() == 1


def _patch_queries(member, catalog, splits: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = member.client.patch(
            url(member, catalog.id), {"properties": {"splits-per-node": splits}}, format="json"
        )
    assert response.status_code == 200, response.content
    return len(captured)


def test_patch_queries_do_not_grow_with_attached_clusters(member, clusters):
    counts = []
    for n, name in ((2, "small"), (12, "large")):
        created = member.client.post(url(member), body(name, "tpch"), format="json").json()
        catalog = Catalog.objects.get(pk=created["id"])
        for cluster in clusters(n):
            services.set_cluster_catalogs(cluster, [catalog])
        _patch_queries(member, catalog, 5)  # settles token bookkeeping and the first publish
        counts.append(_patch_queries(member, catalog, 6))
    assert counts[0] == counts[1], counts


def test_list_queries_are_constant(member, clusters, django_assert_max_num_queries):
    for i in range(15):
        created = member.client.post(url(member), body(f"c{i}", "tpch"), format="json").json()
        catalog = Catalog.objects.get(pk=created["id"])
        for cluster in clusters(2):
            services.set_cluster_catalogs(cluster, [catalog])
    member.client.get(url(member))
    with django_assert_max_num_queries(4):
        response = member.client.get(url(member), {"limit": 200})
    assert len(response.json()["results"]) == 15
    assert all(len(c["clusters"]) == 2 for c in response.json()["results"])


def test_secret_values_are_never_accepted_only_arns(member):
    payload = body("pg", "postgresql")
    payload["secrets"] = {"connection-password": {"arn": ARN, "json_key": "password"}}
    response = member.client.post(url(member), payload, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["secrets"] == {
        "connection-password": {"arn": ARN, "json_key": "password"}
    }
