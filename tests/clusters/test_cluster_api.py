"""Cluster API validation and state rules (no workflow runs: non-transactional tests)."""

from __future__ import annotations

import pytest

from controlplane.clusters.models import Cluster
from tests.factories import ClusterFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def url(owner, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/clusters{suffix}"


def body(plane, **extra):
    return {
        "name": "adhoc",
        "compute_plane": plane.id,
        "engine": "trino",
        "coordinator": {"instance_type": "m6i.xlarge"},
        "workers": {"instance_type": "r6i.2xlarge", "count": 3},
        **extra,
    }


@pytest.fixture
def plane(owner):
    return ComputePlaneFactory(organization=owner.org)


def test_create_answers_202_with_the_operation_and_defaults(owner, plane):
    response = owner.client.post(url(owner), body(plane), format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["id"].startswith("cl_")
    assert data["version"] == "476"
    assert data["workers"] == {
        "desired": 3,
        "ready": 0,
        "min_count": 1,
        "max_count": 10,
        "instance_type": "r6i.2xlarge",
        "spot": False,
    }
    assert data["operation"]["status"] == "queued"
    listed = owner.client.get(url(owner)).json()["results"]
    assert [c["id"] for c in listed] == [data["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"coordinator": {"instance_type": "m6i.huge"}}, "coordinator.instance_type"),
        ({"workers": {"instance_type": "x1.nope", "count": 2}}, "workers.instance_type"),
        ({"version": "0.1"}, "version"),
        (
            {"workers": {"instance_type": "r6i.2xlarge", "count": 12, "max_count": 8}},
            "workers.count",
        ),
        (
            {"workers": {"instance_type": "r6i.2xlarge", "count": 1, "min_count": 2}},
            "workers.count",
        ),
        (
            {
                "workers": {
                    "instance_type": "r6i.2xlarge",
                    "count": 3,
                    "min_count": 5,
                    "max_count": 4,
                }
            },
            "workers.min_count",
        ),
        ({"engine": "spark"}, "engine"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_bad_requests_get_422_field_errors(owner, plane, change, field):
    response = owner.client.post(url(owner), body(plane, **change), format="json")
    assert response.status_code in (400, 422), response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.json()["errors"], response.json()
    assert not Cluster.objects.exists()


def test_a_compute_plane_that_is_not_ready_is_409(owner):
    plane = ComputePlaneFactory(organization=owner.org, status="provisioning")
    response = owner.client.post(url(owner), body(plane), format="json")
    assert response.status_code == 409
    assert "compute_plane" in response.json()["errors"]


def test_another_organizations_compute_plane_is_404(owner):
    foreign = ComputePlaneFactory(organization=OrganizationFactory())
    response = owner.client.post(url(owner), body(foreign), format="json")
    assert response.status_code == 404
    assert "compute_plane" in response.json()["errors"]
    assert not Cluster.objects.exists()


def test_resize_outside_the_bounds_is_422_and_a_stopped_cluster_cannot_resize(owner):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.post(
        url(owner, f"/{cluster.id}/resize"), {"workers": 11}, format="json"
    )
    assert response.status_code == 422
    assert "workers" in response.json()["errors"]
    Cluster.objects.filter(pk=cluster.pk).update(status="stopped")
    response = owner.client.post(url(owner, f"/{cluster.id}/resize"), {"workers": 2}, format="json")
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        ("running", "start", 409),
        ("stopped", "stop", 409),
        ("stopped", "restart", 409),
        ("provisioning", "stop", 409),
        ("running", "stop", 202),
        ("stopped", "start", 202),
        ("running", "restart", 202),
    ],
)
def test_lifecycle_actions_follow_the_status(owner, status, action, code):
    cluster = ClusterFactory(organization=owner.org, status=status)
    response = owner.client.post(url(owner, f"/{cluster.id}/{action}"))
    assert response.status_code == code, response.content


def test_patch_renames_and_changes_bounds_in_place(owner):
    cluster = ClusterFactory(organization=owner.org, workers_desired=4)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"name": "renamed", "max_count": 20}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "renamed"
    assert response.json()["workers"]["max_count"] == 20
    response = owner.client.patch(url(owner, f"/{cluster.id}"), {"max_count": 3}, format="json")
    assert response.status_code == 422


def test_a_viewer_reads_but_cannot_create(make_caller, owner, plane):
    from controlplane.core.roles import Role

    viewer = make_caller(owner.org, Role.VIEWER)
    assert viewer.client.get(url(owner)).status_code == 200
    assert viewer.client.post(url(owner), body(plane), format="json").status_code == 403


def test_the_compute_plane_cannot_be_deleted_while_a_cluster_lives(owner, plane):
    ClusterFactory(organization=owner.org, compute_plane=plane)
    response = owner.client.delete(f"/api/v1/orgs/{owner.org.slug}/compute-planes/{plane.id}")
    assert response.status_code == 409


def test_resizing_to_the_current_size_is_200_with_no_operation(owner):
    from controlplane.core.models import Operation

    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.post(
        url(owner, f"/{cluster.id}/resize"), {"workers": cluster.workers_desired}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert not Operation.objects.filter(organization=owner.org).exists()


@pytest.mark.parametrize("workers", ["5", True, 2.5, None])
def test_numbers_are_json_numbers_only(owner, workers):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.post(
        url(owner, f"/{cluster.id}/resize"), {"workers": workers}, format="json"
    )
    assert response.status_code == 400
    assert "workers" in response.json()["errors"]
