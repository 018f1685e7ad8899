"""Malformed bodies never make a write endpoint of the data side answer 500.

Each body is wrong in a way a hand-written client or a template gone astray produces: wrong JSON
types where objects, lists and strings are expected, nulls, huge numbers, nested junk.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.core.roles import Role
from tests.factories import (
    CacheFactory,
    CatalogFactory,
    ClusterFactory,
    ComputePlaneFactory,
    MetastoreFactory,
)

pytestmark = pytest.mark.django_db

JUNK: list[Any] = [
    [],
    "text",
    None,
    17,
    {"name": None},
    {"name": ["x"], "compute_plane": {"id": 1}},
    {"properties": "a=b", "secrets": ["arn"], "connector": 5},
    {"properties": {"k": {"nested": True}}, "secrets": {"k": 12}},
    {"mounts": {"path": "/x"}, "policies": "preload", "workers": "two"},
    {"mounts": [None, 3], "policies": [None, "x", {"type": None}]},
    {"workers": 10**30, "size_gb_per_worker": -1, "medium": ["ssd"]},
    {"glue": "eu-west-1", "uri": 9083, "kind": {"managed": True}},
    {"catalogs": "cat_1", "cache": 7, "coordinator": [], "workers": None},
    {"catalogs": [None, {"id": "cat_1"}], "cache": {"id": "cache_1"}},
    {"engine": "presto", "workers": {"count": "many", "instance_type": None}},
]


def _collections(owner: Any) -> dict[str, str]:
    plane = ComputePlaneFactory(organization=owner.org, status="ready")
    cluster = ClusterFactory(organization=owner.org, compute_plane=plane)
    return {
        "catalogs": CatalogFactory(organization=owner.org).pk,
        "metastores": MetastoreFactory(organization=owner.org, compute_plane=plane).pk,
        "caches": CacheFactory(organization=owner.org, compute_plane=plane).pk,
        "clusters": cluster.pk,
    }


@pytest.mark.parametrize("body", JUNK, ids=lambda b: repr(b)[:40])
def test_no_malformed_body_is_a_server_error(make_caller: Any, org: Any, body: Any) -> None:
    owner = make_caller(org, Role.OWNER)
    base = f"/api/v1/orgs/{org.slug}"
    for collection, object_id in _collections(owner).items():
        for method, path in (
            ("post", f"{base}/{collection}"),
            ("patch", f"{base}/{collection}/{object_id}"),
        ):
            response = getattr(owner.client, method)(path, body, format="json")
            # Fields another resource has are ignored (a PATCH of them changes nothing, 200);
            # anything else is a 4xx problem. Never a 500.
            assert response.status_code < 500, (method, path, response.content)
            if response.status_code >= 400:
                problem = response["Content-Type"].startswith("application/problem+json")
                assert problem, (method, path, response.content)
            elif body is not None and not isinstance(body, dict):  # None: sent as no body
                pytest.fail(f"{method} {path} accepted a {type(body).__name__} body")
