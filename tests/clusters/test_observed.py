"""The agent's status reports reach the clusters of its own compute plane only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from computeplane_agent import contract
from controlplane.agentapi.services import agent_id_for, announce_status_batch
from controlplane.clusters.models import Cluster
from controlplane.clusters.observed import OBSERVED_FIELDS, on_status_reported
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
    plane = ComputePlaneFactory()
    clusters = [
        ClusterFactory(organization=plane.organization, compute_plane=plane) for _ in range(count)
    ]
    body = report(register(plane), *((c, 3) for c in clusters))
    parsed = contract.StatusReport.model_validate(body)
    # SAVEPOINT + read + bulk UPDATE + UPDATE of unlisted clusters + RELEASE
    with django_assert_max_num_queries(5):
        on_status_reported(None, reports=[(plane.id, parsed)])
    assert set(
        Cluster.objects.filter(compute_plane=plane).values_list("workers_ready", "observed_phase")
    ) == {(3, "running")}


def cluster_status(cluster, ready: int, at: datetime) -> contract.ClusterStatus:
    return contract.ClusterStatus(
        id=cluster.id,
        phase="running",
        coordinator_ready=True,
        workers_ready=ready,
        workers_desired=ready,
        observed_at=at,
    )


def plane_report(plane, *statuses, version: int, sent_at: datetime) -> contract.StatusReport:
    return contract.StatusReport(
        agent_id=agent_id_for(plane.id),
        report_id=uuid.uuid4().hex,
        applied_version=version,
        sent_at=sent_at,
        clusters=list(statuses),
    )


def observed(cluster) -> tuple:
    return Cluster.objects.values_list(*OBSERVED_FIELDS).get(pk=cluster.pk)


def test_one_send_of_many_planes_reports_updates_each_planes_clusters_from_its_own_report():
    sent_at = timezone.now()
    planes = [ComputePlaneFactory() for _ in range(4)]
    outside = ComputePlaneFactory()  # not in the batch

    def cluster(plane, **fields):
        return ClusterFactory(organization=plane.organization, compute_plane=plane, **fields)

    listed = [cluster(plane) for plane in planes]
    # Running before this batch: being left out of its plane's report makes it absent.
    unlisted = [
        cluster(plane, observed_phase="running", coordinator_ready=True, workers_ready=3)
        for plane in planes
    ]
    deleted = [cluster(plane, status="deleted", deleted_at=sent_at) for plane in planes]
    foreign = cluster(outside)
    batch = []
    for i, plane in enumerate(planes):
        statuses = [cluster_status(listed[i], i + 1, sent_at - timedelta(seconds=i))]
        statuses.append(cluster_status(deleted[i], 9, sent_at))  # the agent still lists it
        if i == 0:
            # An agent naming clusters of other planes, in this batch and outside it.
            statuses += [
                cluster_status(unlisted[1], 9, sent_at),
                cluster_status(foreign, 9, sent_at),
            ]
        batch.append((plane.id, plane_report(plane, *statuses, version=10 + i, sent_at=sent_at)))

    announce_status_batch(batch)

    untouched = (0, "", False, 0, None)
    for i in range(len(planes)):
        at = sent_at - timedelta(seconds=i)
        assert observed(listed[i]) == (10 + i, "running", True, i + 1, at)
        assert observed(unlisted[i]) == (10 + i, "absent", False, 0, sent_at)
        assert observed(deleted[i]) == untouched
    assert observed(foreign) == untouched


def test_on_postgresql_a_batch_of_1_or_50_planes_is_one_statement():
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement batch is PostgreSQL's; other databases take the ORM path")
    sent_at = timezone.now()
    counts = {}
    for size in (1, 50):
        batch = []
        for _ in range(size):
            plane = ComputePlaneFactory()
            first, second, _ = (
                ClusterFactory(organization=plane.organization, compute_plane=plane)
                for _ in range(3)
            )
            statuses = (cluster_status(first, 2, sent_at), cluster_status(second, 2, sent_at))
            batch.append((plane.id, plane_report(plane, *statuses, version=5, sent_at=sent_at)))
        with CaptureQueriesContext(connection) as queries:
            on_status_reported(None, reports=batch)
        counts[size] = len(queries)
        phases = Cluster.objects.filter(compute_plane_id__in=[plane for plane, _ in batch])
        assert sorted(phases.values_list("observed_phase", flat=True)) == sorted(
            ["running", "running", "absent"] * size
        )
    assert counts == {1: 1, 50: 1}
