"""Clusters mount catalogs and read through a cache: only their own organization's, only ones
their engine can run, and a change of either reaches the agent at once."""

from __future__ import annotations

import pytest

from computeplane_agent.connectors import CONNECTORS
from controlplane.agentapi.services import current_desired_state
from controlplane.catalogs.models import CatalogAttachment
from controlplane.clusters.models import Cluster
from tests.clusters.test_cluster_api import body, url
from tests.factories import (
    CacheFactory,
    CatalogFactory,
    ClusterFactory,
    ComputePlaneFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plane(owner):
    return ComputePlaneFactory(organization=owner.org)


def test_create_mounts_own_catalogs_and_cache(owner, plane):
    catalog = CatalogFactory(organization=owner.org)
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    response = owner.client.post(
        url(owner), body(plane, catalogs=[catalog.id], cache=cache.id), format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["catalogs"] == [catalog.id]
    assert response.json()["cache"] == cache.id
    shown = owner.client.get(url(owner, f"/{response.json()['id']}")).json()
    assert (shown["catalogs"], shown["cache"]) == ([catalog.id], cache.id)


@pytest.mark.parametrize("field", ["catalogs", "cache"])
def test_another_organizations_catalog_or_cache_is_404_and_nothing_is_created(owner, plane, field):
    stranger = OrganizationFactory()
    if field == "catalogs":
        extra = {"catalogs": [CatalogFactory(organization=stranger).id]}
    else:
        foreign_plane = ComputePlaneFactory(organization=stranger)
        extra = {"cache": CacheFactory(organization=stranger, compute_plane=foreign_plane).id}
    response = owner.client.post(url(owner), body(plane, **extra), format="json")
    assert response.status_code == 404, response.content
    assert field in response.json()["errors"]
    assert not Cluster.objects.exists()
    cluster = ClusterFactory(organization=owner.org, compute_plane=plane)
    response = owner.client.patch(url(owner, f"/{cluster.id}"), extra, format="json")
    assert response.status_code == 404, response.content
    assert not CatalogAttachment.objects.exists()
    cluster.refresh_from_db()
    assert cluster.cache_id is None


def test_a_catalog_setting_what_the_engine_lacks_is_422(owner, plane):
    # A property the registry knows on PrestoDB only, mounted on a Trino cluster.
    connector, prop = next(
        (c, p) for c in CONNECTORS.values() for p in c.properties if p.presto and not p.trino
    )
    catalog = CatalogFactory(
        organization=owner.org,
        connector=connector.name,
        properties={prop.key: prop.default or "1"},
    )
    response = owner.client.post(url(owner), body(plane, catalogs=[catalog.id]), format="json")
    assert response.status_code == 422, response.content
    problem = " ".join(response.json()["errors"]["catalogs"])
    assert prop.key in problem
    assert "Trino does not have" in problem
    assert not Cluster.objects.exists()


def test_patch_catalogs_and_cache_publishes_them_to_the_agent(owner, plane):
    cluster = ClusterFactory(organization=owner.org, compute_plane=plane)
    catalog = CatalogFactory(organization=owner.org)
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"catalogs": [catalog.id], "cache": cache.id}, format="json"
    )
    assert response.status_code == 200, response.content
    state = current_desired_state(plane)
    (spec,) = state.clusters
    assert spec.catalogs == [catalog.id]
    assert spec.cache == cache.id
    assert [c.id for c in state.catalogs] == [catalog.id]
    assert [c.id for c in state.caches] == [cache.id]
    # Detaching publishes again.
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"catalogs": [], "cache": None}, format="json"
    )
    assert response.status_code == 200, response.content
    (spec,) = current_desired_state(plane).clusters
    assert (spec.catalogs, spec.cache) == ([], None)
