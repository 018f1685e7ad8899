"""Metastores through the API: hive/glue ready at once, managed as an operation, input rules,
tenancy, and 409 while a catalog uses one."""

from __future__ import annotations

import pytest

from controlplane.catalogs.models import Metastore
from controlplane.core.models import Operation
from tests.factories import CatalogFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def url(caller, ms_id: str | None = None) -> str:
    base = f"/api/v1/orgs/{caller.org.slug}/metastores"
    return f"{base}/{ms_id}" if ms_id else base


def test_hive_metastore_is_ready_at_once(member, plane):
    response = member.client.post(
        url(member),
        {"name": "hms", "compute_plane": plane.id, "kind": "hive", "uri": "thrift://hms:9083"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "ready"
    assert data["endpoint"] == "thrift://hms:9083"
    assert data["operation"] is None
    assert data["glue"] is None


def test_glue_metastore_and_its_rules(member, plane):
    def post(**extra):
        body = {"name": "glue", "compute_plane": plane.id, "kind": "glue", **extra}
        return member.client.post(url(member), body, format="json")

    bad = post(glue={"region": "Europe", "catalog_id": "12345"})
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"glue.region", "glue.catalog_id"}
    assert set(post(glue={"region": "eu-west-1"}, uri="thrift://x:1").json()["errors"]) == {"uri"}
    good = post(glue={"region": "eu-west-1", "catalog_id": "123456789012"})
    assert good.status_code == 201
    assert good.json()["glue"] == {"region": "eu-west-1", "catalog_id": "123456789012"}
    assert good.json()["endpoint"] is None


@pytest.mark.parametrize(
    "uri", ["", "hms:9083", "thrift://hms", "thrift://hms:99999", "http://hms:9083"]
)
def test_hive_needs_thrift_uris(uri, member, plane):
    response = member.client.post(
        url(member),
        {"name": "hms", "compute_plane": plane.id, "kind": "hive", "uri": uri},
        format="json",
    )
    assert response.status_code == 422
    assert "uri" in response.json()["errors"]


def test_managed_metastore_starts_an_operation(member, plane):
    response = member.client.post(
        url(member),
        {"name": "managed", "compute_plane": plane.id, "kind": "managed"},
        format="json",
    )
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "provisioning"
    assert data["version"] == "4.0.1"  # the default from versions.py
    assert data["endpoint"] is None
    operation = Operation.objects.get(pk=data["operation"]["id"])
    assert operation.kind == "metastore.create"
    assert response["Location"].endswith(f"/operations/{operation.id}")
    bad = member.client.post(
        url(member),
        {"name": "m2", "compute_plane": plane.id, "kind": "managed", "version": "9.9"},
        format="json",
    )
    assert bad.status_code == 422
    assert "version" in bad.json()["errors"]


def test_managed_needs_a_ready_plane_of_the_org(member, org):
    provisioning = ComputePlaneFactory(organization=org, status="provisioning")
    body = {"name": "managed", "compute_plane": provisioning.id, "kind": "managed"}
    assert member.client.post(url(member), body, format="json").status_code == 409
    foreign = ComputePlaneFactory(organization=OrganizationFactory())
    body["compute_plane"] = foreign.id
    assert member.client.post(url(member), body, format="json").status_code == 404
    assert not Metastore.objects.exists()


def test_deleting_a_metastore_in_use_is_409(member, org, plane):
    created = member.client.post(
        url(member),
        {"name": "hms", "compute_plane": plane.id, "kind": "hive", "uri": "thrift://hms:9083"},
        format="json",
    ).json()
    catalog = CatalogFactory(
        organization=org, connector="hive", metastore_id=created["id"], properties={}
    )
    response = member.client.delete(url(member, created["id"]))
    assert response.status_code == 409
    assert response.json()["errors"]["catalogs"] == [catalog.id]
    member.client.delete(f"/api/v1/orgs/{org.slug}/catalogs/{catalog.id}")
    assert member.client.delete(url(member, created["id"])).status_code == 204
    # One rule for every resource: a deleted one stays listed as "deleted".
    assert member.client.get(url(member, created["id"])).json()["status"] == "deleted"
    listed = member.client.get(url(member)).json()["results"]
    assert [(m["id"], m["status"]) for m in listed] == [(created["id"], "deleted")]
    assert member.client.delete(url(member, created["id"])).status_code == 409


def test_patching_a_metastore_uri_bumps_its_catalogs(member, org, plane):
    created = member.client.post(
        url(member),
        {"name": "hms", "compute_plane": plane.id, "kind": "hive", "uri": "thrift://hms:9083"},
        format="json",
    ).json()
    catalog = CatalogFactory(
        organization=org, connector="hive", metastore_id=created["id"], properties={}
    )
    response = member.client.patch(
        url(member, created["id"]), {"uri": "thrift://a:9083,thrift://b:9083"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["endpoint"] == "thrift://a:9083,thrift://b:9083"
    catalog.refresh_from_db()
    assert catalog.version == 2
    bad = member.client.patch(url(member, created["id"]), {"uri": "nope"}, format="json")
    assert bad.status_code == 422
