"""Cache API: validation (422 with field errors), state rules, roles, audit, query counts.

Non-transactional tests: a POST writes the operation and no workflow runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.caching.models import Cache
from controlplane.core.models import AuditEvent, Operation
from controlplane.core.roles import Role
from tests.factories import CacheFactory, ClusterFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

POLICIES = [
    {"type": "preload", "path": "/warehouse/hot", "schedule": "0 3 * * *"},
    {"type": "preload", "path": "/onprem/events"},
    {"type": "pin", "path": "/warehouse/dims"},
    {"type": "ttl", "path": "/warehouse/tmp", "seconds": 86400},
    {"type": "write_back"},
]


def url(owner, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/caches{suffix}"


def body(plane, **extra: Any) -> dict[str, Any]:
    return {
        "name": "hot-lake",
        "compute_plane": plane.id,
        "workers": 3,
        "medium": "mem",
        "size_gb_per_worker": 40,
        "mounts": [
            {"path": "/warehouse", "uri": "s3://acme-lake/warehouse"},
            {"path": "/onprem", "uri": "hdfs://namenode.corp.example:8020/data"},
        ],
        "policies": POLICIES,
        **extra,
    }


@pytest.fixture
def plane(owner):
    return ComputePlaneFactory(organization=owner.org)


def test_create_answers_202_with_the_operation_and_the_cache_as_asked(owner, plane):
    response = owner.client.post(url(owner), body(plane), format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    op = data["operation"]["id"]
    assert response["Location"] == f"/api/v1/orgs/{owner.org.slug}/operations/{op}"
    assert data["id"].startswith("cache_")
    assert data["status"] == "provisioning"
    assert data["version"] == "2.9.5"
    assert data["worker_instance_type"] == "r6i.2xlarge"  # the mem tier's default
    assert data["workers"] == {"desired": 3, "ready": 0}
    assert data["usage"] == {
        "bytes_used": 0,
        "bytes_capacity": 0,
        "hit_ratio": None,
        "observed_at": None,
    }
    assert data["clusters"] == []
    assert data["mounts"] == body(plane)["mounts"]
    assert data["policies"] == POLICIES
    assert Operation.objects.get(pk=op).kind == "cache.create"
    cache = Cache.objects.get(pk=data["id"])
    # Stored as the agent contract's CachePolicies.
    assert cache.policies == {
        "preload": [
            {"path": "/warehouse/hot", "schedule": "0 3 * * *"},
            {"path": "/onprem/events", "schedule": None},
        ],
        "pin": ["/warehouse/dims"],
        "ttl": [{"path": "/warehouse/tmp", "seconds": 86400, "action": "free"}],
        "write_back": True,
    }
    assert AuditEvent.objects.filter(action="cache.created", target_id=cache.id).exists()
    listed = owner.client.get(url(owner)).json()["results"]
    assert [c["id"] for c in listed] == [cache.id]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"medium": "tape"}, "medium"),
        ({"workers": 0}, "workers"),
        ({"workers": 501}, "workers"),
        ({"version": "1.0"}, "version"),
        ({"worker_instance_type": "x9.huge"}, "worker_instance_type"),
        # r6i.2xlarge has 64 GiB; the mem tier keeps 16 of them for the node.
        ({"size_gb_per_worker": 49}, "size_gb_per_worker"),
        ({"size_gb_per_worker": 0}, "size_gb_per_worker"),
        ({"medium": "ssd", "size_gb_per_worker": 20000}, "size_gb_per_worker"),
        # i4i.2xlarge has 1875 GB of local NVMe.
        ({"medium": "nvme", "size_gb_per_worker": 2000}, "size_gb_per_worker"),
        (
            {"medium": "nvme", "worker_instance_type": "m6i.2xlarge", "size_gb_per_worker": 10},
            "worker_instance_type",
        ),
        ({"mounts": []}, "mounts"),
        ({"mounts": [{"path": "warehouse", "uri": "s3://acme-lake/w"}]}, "mounts.0.path"),
        ({"mounts": [{"path": "/", "uri": "s3://acme-lake/w"}]}, "mounts.0.path"),
        ({"mounts": [{"path": "/a/../b", "uri": "s3://acme-lake/w"}]}, "mounts.0.path"),
        (
            {
                "mounts": [
                    {"path": "/w", "uri": "s3://acme-lake/a"},
                    {"path": "/w", "uri": "s3://acme-lake/b"},
                ]
            },
            "mounts.1.path",
        ),
        (
            {
                "mounts": [
                    {"path": "/w", "uri": "s3://acme-lake/a"},
                    {"path": "/w/sub", "uri": "s3://acme-lake/b"},
                ]
            },
            "mounts.1.path",
        ),
        ({"mounts": [{"path": "/w", "uri": "gs://bucket/x"}]}, "mounts.0.uri"),
        ({"mounts": [{"path": "/w", "uri": "s3://Bad_Bucket/x"}]}, "mounts.0.uri"),
        ({"mounts": [{"path": "/w", "uri": "hdfs://namenode/data"}]}, "mounts.0.uri"),
        ({"mounts": [{"path": "/w", "uri": "hdfs://nn:99999/data"}]}, "mounts.0.uri"),
        (
            {"mounts": [{"path": "/w", "uri": "s3://acme-lake/x?X-Amz-Credential=a"}]},
            "mounts.0.uri",
        ),
        ({"policies": [{"type": "evict", "path": "/warehouse"}]}, "policies.0.type"),
        ({"policies": [{"type": "pin", "path": "/elsewhere"}]}, "policies.0.path"),
        ({"policies": [{"type": "pin", "path": "/warehouse", "seconds": 5}]}, "policies.0"),
        ({"policies": [{"type": "ttl", "path": "/warehouse", "seconds": 5}]}, "policies.0.seconds"),
        ({"policies": [{"type": "ttl", "path": "/warehouse"}]}, "policies.0.seconds"),
        (
            {
                "policies": [
                    {"type": "pin", "path": "/warehouse"},
                    {"type": "pin", "path": "/warehouse"},
                ]
            },
            "policies.1.path",
        ),
        ({"policies": [{"type": "write_back"}, {"type": "write_back"}]}, "policies.1"),
    ],
)
def test_bad_input_is_422_with_the_field(owner, plane, change, field):
    response = owner.client.post(url(owner), body(plane, **change), format="json")
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"], response.json()
    assert not Cache.objects.exists()


@pytest.mark.parametrize(
    "uri",
    [
        "s3://AKIAEXAMPLE:secret@acme-lake/warehouse",
        "hdfs://hdfs:hunter2@namenode.corp:8020/data",
        "hdfs://alice@namenode.corp:8020/data",
    ],
)
def test_credentials_inside_a_mount_uri_are_refused_and_never_stored(owner, plane, uri):
    mounts = [{"path": "/warehouse", "uri": uri}]
    response = owner.client.post(url(owner), body(plane, mounts=mounts, policies=[]), format="json")
    assert response.status_code == 422, response.content
    assert "Credentials" in response.json()["errors"]["mounts.0.uri"][0]
    assert "hunter2" not in response.content.decode()
    assert not Cache.objects.exists()


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("0 3 * * *", True),
        ("*/15 0-6 1,15 jan-mar mon-fri", True),
        ("30 2 * * 7", True),
        ("0 3 * *", False),
        ("60 3 * * *", False),
        ("0 24 * * *", False),
        ("0 3 0 * *", False),
        ("0 3 * 13 *", False),
        ("0 3 * * funday", False),
        ("*/0 * * * *", False),
        ("5-1 * * * *", False),
        ("@daily", False),
    ],
)
def test_preload_schedules_are_cron_expressions(owner, plane, schedule, ok):
    policies = [{"type": "preload", "path": "/warehouse", "schedule": schedule}]
    response = owner.client.post(url(owner), body(plane, policies=policies), format="json")
    if ok:
        assert response.status_code == 202, response.content
    else:
        assert response.status_code == 422, response.content
        assert "policies.0.schedule" in response.json()["errors"]


def test_the_compute_plane_must_be_ready_and_in_the_same_org(owner, plane):
    plane.status = "provisioning"
    plane.save()
    response = owner.client.post(url(owner), body(plane), format="json")
    assert response.status_code == 409
    assert "compute_plane" in response.json()["errors"]

    foreign = ComputePlaneFactory(organization=OrganizationFactory())
    response = owner.client.post(url(owner), body(foreign), format="json")
    assert response.status_code == 404
    assert "compute_plane" in response.json()["errors"]
    assert not Cache.objects.exists()


def test_names_are_unique_among_live_caches(owner, plane):
    CacheFactory(organization=owner.org, compute_plane=plane, name="hot-lake")
    response = owner.client.post(url(owner), body(plane), format="json")
    assert response.status_code == 422
    assert "name" in response.json()["errors"]


def test_a_viewer_reads_but_cannot_create_change_or_delete(make_caller, owner, plane):
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    viewer = make_caller(owner.org, Role.VIEWER)
    assert viewer.client.get(url(owner)).status_code == 200
    assert viewer.client.get(url(owner, f"/{cache.id}")).status_code == 200
    assert viewer.client.post(url(owner), body(plane), format="json").status_code == 403
    patch = viewer.client.patch(url(owner, f"/{cache.id}"), {"workers": 4}, format="json")
    assert patch.status_code == 403
    assert viewer.client.delete(url(owner, f"/{cache.id}")).status_code == 403
    member = make_caller(owner.org, Role.MEMBER)
    assert member.client.post(url(owner), body(plane), format="json").status_code == 202


def test_patch_starts_an_update_and_keeps_the_tier_fixed(owner, plane):
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    detail = url(owner, f"/{cache.id}")

    fixed = owner.client.patch(detail, {"medium": "ssd"}, format="json")
    assert fixed.status_code == 422
    assert "medium" in fixed.json()["errors"]
    too_big = owner.client.patch(detail, {"size_gb_per_worker": 64}, format="json")
    assert too_big.status_code == 422
    assert "size_gb_per_worker" in too_big.json()["errors"]
    outside = owner.client.patch(
        detail, {"policies": [{"type": "pin", "path": "/nowhere"}]}, format="json"
    )
    assert outside.status_code == 422

    unchanged = owner.client.patch(detail, {"workers": cache.workers}, format="json")
    assert unchanged.status_code == 200
    assert unchanged.json()["operation"] is None

    change = {"workers": 5, "policies": [{"type": "pin", "path": "/warehouse/dims"}]}
    response = owner.client.patch(detail, change, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "updating"
    assert data["workers"]["desired"] == 5
    assert data["policies"] == [{"type": "pin", "path": "/warehouse/dims"}]
    assert Operation.objects.get(pk=data["operation"]["id"]).kind == "cache.update"
    event = AuditEvent.objects.get(action="cache.updated", target_id=cache.id)
    assert event.data["changed"] == ["policies", "workers"]

    # One change at a time.
    again = owner.client.patch(detail, {"workers": 6}, format="json")
    assert again.status_code == 409


def test_delete_is_409_while_a_cluster_reads_through_the_cache(owner, plane):
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    cluster = ClusterFactory(organization=owner.org, compute_plane=plane, cache=cache)
    detail = url(owner, f"/{cache.id}")
    assert owner.client.get(detail).json()["clusters"] == [cluster.id]

    response = owner.client.delete(detail)
    assert response.status_code == 409
    assert response.json()["errors"]["clusters"] == [cluster.id]
    assert Cache.objects.get(pk=cache.id).status == "ready"

    cluster.status = "deleted"
    cluster.deleted_at = cluster.created_at
    cluster.save()
    response = owner.client.delete(detail)
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "deleting"
    assert response.json()["clusters"] == []
    assert AuditEvent.objects.filter(action="cache.delete_requested", target_id=cache.id).exists()
    assert owner.client.delete(detail).status_code == 409


def test_listing_costs_the_same_queries_for_one_cache_or_twenty(
    owner, plane, django_assert_max_num_queries
):
    def add(n: int) -> None:
        for _ in range(n):
            cache = CacheFactory(organization=owner.org, compute_plane=plane)
            ClusterFactory.create_batch(2, organization=owner.org, compute_plane=plane, cache=cache)

    add(1)
    with django_assert_max_num_queries(6) as one:
        assert len(owner.client.get(url(owner)).json()["results"]) == 1
    add(19)
    with django_assert_max_num_queries(len(one.captured_queries)):
        results = owner.client.get(url(owner)).json()["results"]
    assert len(results) == 20
    assert all(len(r["clusters"]) == 2 for r in results)
