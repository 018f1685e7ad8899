"""Deleting an organization that still owns cloud resources is refused with what to delete first."""

import pytest
from django.db.models import ProtectedError
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from controlplane.core.errors import problem_exception_handler
from controlplane.tenancy.models import Organization
from tests.factories import CacheFactory, ClusterFactory, ComputePlaneFactory, MetastoreFactory

pytestmark = pytest.mark.django_db


def test_an_organization_with_resources_is_not_deleted(owner, org):
    plane = ComputePlaneFactory(organization=org, name="prod")
    ClusterFactory(organization=org, compute_plane=plane, name="etl")
    MetastoreFactory(organization=org, compute_plane=plane, name="hms")
    CacheFactory(organization=org, compute_plane=plane, name="hot")

    response = owner.client.delete(f"/api/v1/orgs/{org.slug}")

    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 409
    listed = [name for names in body["errors"].values() for name in names]
    assert {"prod", "etl", "hms", "hot"} <= {item.split(" ")[0] for item in listed}
    assert Organization.objects.filter(pk=org.pk).exists()


def test_soft_deleted_resources_do_not_block_deletion(owner, org):
    plane = ComputePlaneFactory(organization=org, deleted_at=timezone.now(), status="deleted")
    ClusterFactory(
        organization=org, compute_plane=plane, deleted_at=timezone.now(), status="deleted"
    )

    response = owner.client.delete(f"/api/v1/orgs/{org.slug}")

    assert response.status_code == 204, response.content
    assert not Organization.objects.filter(pk=org.pk).exists()


def test_any_protected_error_is_a_409_problem(org):
    request = APIRequestFactory().delete("/anything")
    error = ProtectedError("Cannot delete some instances", {org})
    response = problem_exception_handler(error, {"request": request})
    assert response is not None
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert response.data["errors"] == {"organizations": [str(org)]}
