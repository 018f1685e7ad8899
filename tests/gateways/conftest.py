"""A compute plane with clusters, and URL helpers for its gateway."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from tests.factories import ClusterFactory, ComputePlaneFactory


@dataclass
class Plane:
    plane: ComputePlane
    base: str
    etl: Cluster
    adhoc: Cluster
    spare: Cluster

    def url(self, tail: str = "") -> str:
        return f"{self.base}{tail}"


@pytest.fixture
def gw(owner) -> Plane:
    plane = ComputePlaneFactory(organization=owner.org)
    clusters = [
        ClusterFactory(organization=owner.org, compute_plane=plane, name=name)
        for name in ("etl", "adhoc", "spare")
    ]
    base = f"/api/v1/orgs/{owner.org.slug}/compute-planes/{plane.id}/gateway"
    return Plane(plane, base, *clusters)


def make_group(client, gw: Plane, name: str, clusters: list[str], **extra) -> dict:
    response = client.post(
        gw.url("/routing-groups"), {"name": name, "clusters": clusters, **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def make_rule(client, gw: Plane, name: str, group: str, match: dict, priority: int = 100) -> dict:
    response = client.post(
        gw.url("/rules"),
        {"name": name, "group": group, "match": match, "priority": priority},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()
