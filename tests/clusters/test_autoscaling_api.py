"""The autoscaling policy on the cluster resource, its way to the agent, and scaling events."""

from __future__ import annotations

import pytest

from controlplane.agentapi.services import current_desired_state, desired_state_version
from controlplane.clusters.models import Cluster, ScalingEvent
from tests.clusters.test_cluster_api import body, url
from tests.factories import ClusterFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def plane(owner):
    return ComputePlaneFactory(organization=owner.org)


def test_a_cluster_without_a_policy_has_autoscaling_off_and_the_agent_leaves_it_alone(owner):
    cluster = ClusterFactory(organization=owner.org)
    data = owner.client.get(url(owner, f"/{cluster.id}")).json()
    assert data["autoscaling"] == {
        "enabled": False,
        "min_count": 1,
        "max_count": 10,
        "target_queued": 0,
        "target_cpu_percent": 80,
        "scale_out_window_seconds": 60,
        "scale_in_idle_minutes": 10,
        "scale_out_step": 2,
        "scale_in_step": 1,
        "cooldown_seconds": 300,
    }
    from controlplane.clusters.desired import desired_state

    (spec,) = desired_state(cluster.compute_plane).clusters
    assert spec.autoscaling is None


def test_create_with_a_policy_keeps_it_and_its_bounds_are_the_workers_bounds(owner, plane):
    policy = {"enabled": True, "min_count": 2, "max_count": 6, "cooldown_seconds": 120}
    response = owner.client.post(url(owner), body(plane, autoscaling=policy), format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["autoscaling"]["enabled"] is True
    assert data["autoscaling"]["cooldown_seconds"] == 120
    assert (data["workers"]["min_count"], data["workers"]["max_count"]) == (2, 6)


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"enabled": True, "min_count": 5, "max_count": 4}, "autoscaling.min_count"),
        ({"enabled": True, "max_count": 201}, "autoscaling.max_count"),
        ({"cooldown_seconds": 0}, "autoscaling.cooldown_seconds"),
        ({"scale_in_idle_minutes": 0}, "autoscaling.scale_in_idle_minutes"),
        ({"scale_out_window_seconds": -5}, "autoscaling.scale_out_window_seconds"),
        ({"target_cpu_percent": 0}, "autoscaling.target_cpu_percent"),
        ({"scale_out_step": 0}, "autoscaling.scale_out_step"),
        ({"enabled": "yes"}, "autoscaling.enabled"),
    ],
)
def test_a_bad_policy_is_a_field_error_on_create(owner, plane, policy, field):
    response = owner.client.post(url(owner), body(plane, autoscaling=policy), format="json")
    assert response.status_code in (400, 422), response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in response.json()["errors"], response.json()
    assert not Cluster.objects.exists()


def test_bounds_given_twice_must_agree(owner, plane):
    workers = {"instance_type": "r6i.2xlarge", "count": 2, "max_count": 5}
    response = owner.client.post(
        url(owner), body(plane, workers=workers, autoscaling={"max_count": 6}), format="json"
    )
    assert response.status_code == 422
    assert "autoscaling.max_count" in response.json()["errors"]


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"min_count": 5, "max_count": 4}, "autoscaling.min_count"),
        ({"min_count": 3}, "autoscaling.min_count"),  # the cluster has 2 workers now
        ({"enabled": True, "max_count": 500}, "autoscaling.max_count"),
        ({"cooldown_seconds": 0}, "autoscaling.cooldown_seconds"),
        ({"max_count": "7"}, "autoscaling.max_count"),
    ],
)
def test_a_bad_policy_is_a_field_error_on_patch_and_changes_nothing(owner, policy, field):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"autoscaling": policy}, format="json"
    )
    assert response.status_code in (400, 422), response.content
    assert field in response.json()["errors"], response.json()
    cluster.refresh_from_db()
    assert (cluster.autoscaling_enabled, cluster.workers_min, cluster.workers_max) == (
        False,
        1,
        10,
    )


def test_the_quota_is_the_organizations(owner, settings):
    settings.LAKEPLANE_ORG_WORKER_QUOTA = 8
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"autoscaling": {"enabled": True}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["errors"]["autoscaling.max_count"] == [
        "At most the organization's worker quota (8)."
    ]
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"),
        {"autoscaling": {"enabled": True, "max_count": 8}},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_turning_the_policy_on_reaches_the_agent_with_what_the_quota_leaves(owner, settings):
    settings.LAKEPLANE_ORG_WORKER_QUOTA = 20
    cluster = ClusterFactory(organization=owner.org, workers_desired=3)
    # Another cluster of the organisation (on another plane) holds 5 workers of the quota.
    ClusterFactory(organization=owner.org, workers_desired=5)
    before = desired_state_version(cluster.compute_plane_id)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"),
        {"autoscaling": {"enabled": True, "max_count": 12, "target_queued": 2}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert desired_state_version(cluster.compute_plane_id) == before + 1
    (spec,) = current_desired_state(cluster.compute_plane).clusters
    assert spec.autoscaling is not None
    assert spec.autoscaling.enabled
    assert (spec.autoscaling.min_count, spec.autoscaling.max_count) == (1, 12)
    assert spec.autoscaling.target_queued == 2
    assert spec.autoscaling.worker_quota == 15
    # The same PATCH again changes nothing the agent reads: no new version.
    owner.client.patch(
        url(owner, f"/{cluster.id}"), {"autoscaling": {"enabled": True}}, format="json"
    )
    assert desired_state_version(cluster.compute_plane_id) == before + 1


def test_auto_suspend_alone_reaches_the_agent(owner):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"auto_suspend_minutes": 15}, format="json"
    )
    assert response.status_code == 200
    (spec,) = current_desired_state(cluster.compute_plane).clusters
    assert spec.autoscaling is not None
    assert (spec.autoscaling.enabled, spec.autoscaling.auto_suspend_minutes) == (False, 15)


def test_a_user_resize_is_a_scaling_event_listed_newest_first_in_cursor_pages(owner):
    cluster = ClusterFactory(organization=owner.org, workers_desired=2)
    response = owner.client.post(url(owner, f"/{cluster.id}/resize"), {"workers": 4}, format="json")
    assert response.status_code == 202
    Cluster.objects.filter(pk=cluster.pk).update(status="running", operation=None)
    owner.client.post(url(owner, f"/{cluster.id}/resize"), {"workers": 3}, format="json")
    page = owner.client.get(url(owner, f"/{cluster.id}/scaling-events?limit=1"))
    assert page.status_code == 200, page.content
    (first,) = page.json()["results"]
    assert (first["from"], first["to"], first["source"]) == (4, 3, "user")
    assert first["reason"] == "user_resize"
    assert first["actor"] == {"type": "user", "id": owner.user.id}
    assert first["at"].endswith("Z")
    second = owner.client.get(page.json()["next"]).json()
    assert [(e["from"], e["to"]) for e in second["results"]] == [(2, 4)]
    assert second["next"] is None


def test_scaling_events_of_another_organizations_cluster_are_404(owner, make_caller):
    foreign = ClusterFactory(organization=OrganizationFactory())
    ScalingEvent.objects.create(
        cluster=foreign,
        organization=foreign.organization,
        at=foreign.created_at,
        from_count=1,
        to_count=2,
        reason="load_high",
        source="autoscaler",
    )
    assert owner.client.get(url(owner, f"/{foreign.id}/scaling-events")).status_code == 404


def test_a_viewer_reads_scaling_events(owner, make_caller):
    from controlplane.core.roles import Role

    cluster = ClusterFactory(organization=owner.org)
    viewer = make_caller(owner.org, Role.VIEWER)
    response = viewer.client.get(url(owner, f"/{cluster.id}/scaling-events"))
    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None, "previous": None}
    bad = viewer.client.get(url(owner, f"/{cluster.id}/scaling-events?limit=x"))
    assert bad.status_code == 400


OFFICE = {"days": ["fri", "mon"], "start": "08:00", "end": "18:00", "min_count": 4}


def test_schedules_are_kept_and_reach_the_agent_with_their_time_zone(owner):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"),
        {"autoscaling": {"enabled": True}, "schedules": [OFFICE]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["schedules"] == [{**OFFICE, "days": ["mon", "fri"]}]
    (spec,) = current_desired_state(cluster.compute_plane).clusters
    assert spec.autoscaling is not None
    assert [w.model_dump() for w in spec.autoscaling.schedules] == [
        {**OFFICE, "days": ["mon", "fri"]}
    ]
    assert spec.autoscaling.time_zone == "UTC"


@pytest.mark.parametrize(
    ("window", "field"),
    [
        ({**OFFICE, "start": "18:00", "end": "08:00"}, "schedules.0.end"),
        ({**OFFICE, "start": "8am"}, "schedules.0.start"),
        ({**OFFICE, "days": ["someday"]}, "schedules.0.days.0"),
        ({**OFFICE, "days": []}, "schedules.0.days"),
        ({**OFFICE, "min_count": 11}, "schedules.0.min_count"),  # above max_count (10)
        ({**OFFICE, "min_count": "4"}, "schedules.0.min_count"),
    ],
)
def test_a_bad_schedule_is_a_field_error(owner, window, field):
    cluster = ClusterFactory(organization=owner.org)
    response = owner.client.patch(
        url(owner, f"/{cluster.id}"), {"schedules": [window]}, format="json"
    )
    assert response.status_code in (400, 422), response.content
    assert field in response.json()["errors"], response.json()
    cluster.refresh_from_db()
    assert cluster.schedules == []
