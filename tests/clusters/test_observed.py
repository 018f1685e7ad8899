"""The agent's status reports reach the clusters of its own compute plane only."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from controlplane.clusters.models import Cluster
from tests.agentapi.conftest import STATUS, register
from tests.factories import ClusterFactory, ComputePlaneFactory

pytestmark = pytest.mark.django_db


def report(agent, *statuses, version: int = 4) -> dict:
    now = timezone.now().isoformat()
    return {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "applied_version": version,
        "sent_at": now,
        "clusters": [
            {
                "id": cluster.id,
                "phase": "running",
                "coordinator_ready": True,
                "workers_ready": ready,
                "workers_desired": ready,
                "observed_at": now,
            }
            for cluster, ready in statuses
        ],
    }


def test_a_report_sets_ready_counts_and_marks_unlisted_clusters_absent(
    django_capture_on_commit_callbacks,
):
    plane = ComputePlaneFactory()
    listed = ClusterFactory(organization=plane.organization, compute_plane=plane)
    unlisted = ClusterFactory(organization=plane.organization, compute_plane=plane)
    agent = register(plane)
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            agent.client.post(STATUS, report(agent, (listed, 2)), format="json").status_code == 200
        )
    listed.refresh_from_db()
    unlisted.refresh_from_db()
    assert (listed.observed_version, listed.observed_phase, listed.workers_ready) == (
        4,
        "running",
        2,
    )
    assert listed.coordinator_ready
    assert (unlisted.observed_version, unlisted.observed_phase) == (4, "absent")


def test_an_agent_cannot_report_for_another_compute_planes_cluster(
    django_capture_on_commit_callbacks,
):
    mine, theirs = ComputePlaneFactory(), ComputePlaneFactory()
    foreign = ClusterFactory(organization=theirs.organization, compute_plane=theirs)
    agent = register(mine)
    with django_capture_on_commit_callbacks(execute=True):
        agent.client.post(STATUS, report(agent, (foreign, 7)), format="json")
    foreign.refresh_from_db()
    assert (foreign.observed_version, foreign.workers_ready, foreign.observed_phase) == (0, 0, "")
    assert Cluster.objects.filter(observed_version__gt=0).count() == 0


@pytest.mark.parametrize("count", [2, 40])
def test_storing_a_report_costs_the_same_queries_for_2_or_40_clusters(
    count, django_assert_max_num_queries
):
    from computeplane_agent import contract
    from controlplane.clusters.observed import on_status_reported

    plane = ComputePlaneFactory()
    clusters = [
        ClusterFactory(organization=plane.organization, compute_plane=plane) for _ in range(count)
    ]
    body = report(register(plane), *((c, 3) for c in clusters))
    parsed = contract.StatusReport.model_validate(body)
    # SAVEPOINT + read + bulk UPDATE + UPDATE of unlisted clusters + RELEASE
    with django_assert_max_num_queries(5):
        on_status_reported(None, compute_plane_id=plane.id, report=parsed)
    assert set(
        Cluster.objects.filter(compute_plane=plane).values_list("workers_ready", "observed_phase")
    ) == {(3, "running")}
