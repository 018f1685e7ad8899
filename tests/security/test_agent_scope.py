"""An agent's reports name its own compute plane's resources only, and usage outlives the plane.

A sample or status entry naming another plane's cluster (or metastore, or cache) is refused:
dropped before anything is stored, counted in a metric and listed in the answer. The rest of
the report is applied. Usage rows survive the deletion of their compute plane (billing).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from controlplane.agentapi import ingest
from controlplane.agentapi.models import ObservedState, UsageRecord
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from controlplane.tenancy.models import Organization
from tests.agentapi.conftest import STATUS, USAGE, Agent, register
from tests.agentapi.test_ingest import wait_for
from tests.factories import CacheFactory, ClusterFactory, ComputePlaneFactory, MetastoreFactory


def refused_count(report: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "lakeplane_agent_refused_samples_total", {"report": report, "kind": kind}
    )
    return value or 0.0


def two_planes() -> tuple[Agent, Cluster, Cluster]:
    """An agent of one plane with its own cluster, and a cluster of another tenant's plane."""
    plane = ComputePlaneFactory()
    own = ClusterFactory(compute_plane=plane, organization=plane.organization)
    foreign = ClusterFactory()  # another organization, another plane
    return register(plane), own, foreign


def usage(agent: Agent, *cluster_ids: str, report_id: str | None = None) -> dict[str, Any]:
    end = timezone.now().replace(microsecond=0)
    return {
        "agent_id": agent.agent_id,
        "report_id": report_id or uuid.uuid4().hex,
        "period_start": (end - timedelta(minutes=5)).isoformat(),
        "period_end": end.isoformat(),
        "samples": [
            {"cluster_id": c, "instance_type": "r6i.2xlarge", "nodes": 3, "seconds": 300}
            for c in cluster_ids
        ],
    }


def entry(resource_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": resource_id, "observed_at": timezone.now().isoformat(), **fields}


def cluster_entry(cluster_id: str) -> dict[str, Any]:
    return entry(
        cluster_id, phase="running", coordinator_ready=True, workers_ready=7, workers_desired=7
    )


def status(agent: Agent, clusters: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "sent_at": timezone.now().isoformat(),
        "clusters": [cluster_entry(c) for c in clusters],
        **extra,
    }


@pytest.mark.django_db
def test_usage_for_another_planes_cluster_is_refused_counted_and_never_stored() -> None:
    agent, own, foreign = two_planes()
    unknown = "cl_" + "0" * 26  # no such cluster anywhere
    before = refused_count("usage", "clusters")
    body = usage(agent, own.id, foreign.id, foreign.id, unknown)

    response = agent.client.post(USAGE, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["refused"] == {"clusters": sorted([foreign.id, unknown]), "entries": 3}
    assert list(UsageRecord.objects.values_list("resource_id", flat=True)) == [own.id]
    assert refused_count("usage", "clusters") == before + 3

    # A replay answers the same and counts nothing again.
    replay = agent.client.post(USAGE, body, format="json")
    assert replay.json() == response.json()
    assert refused_count("usage", "clusters") == before + 3
    assert UsageRecord.objects.count() == 1


@pytest.mark.django_db
def test_role_samples_of_another_planes_cache_or_metastore_are_refused_too() -> None:
    agent, own, foreign = two_planes()
    own_cache = CacheFactory(compute_plane=agent.plane, organization=agent.plane.organization)
    foreign_cache = CacheFactory(compute_plane=foreign.compute_plane)
    foreign_store = MetastoreFactory(compute_plane=foreign.compute_plane)
    body = usage(agent, own.id)
    sample = {"instance_type": "r6i.2xlarge", "nodes": 1, "seconds": 300}
    body["samples"] += [
        {**sample, "role": "cache", "cache_id": own_cache.id},
        {**sample, "role": "cache", "cache_id": foreign_cache.id},
        {**sample, "role": "metastore", "metastore_id": foreign_store.id},
        {**sample, "role": "gateway"},  # the plane's own gateway names no resource
    ]

    response = agent.client.post(USAGE, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["refused"] == {
        "caches": [foreign_cache.id],
        "metastores": [foreign_store.id],
        "entries": 2,
    }
    stored = set(UsageRecord.objects.values_list("resource_id", "role"))
    assert stored == {(own.id, ""), (own_cache.id, "cache"), (agent.plane.id, "gateway")}


@pytest.mark.django_db
def test_a_report_of_its_own_clusters_only_has_nothing_refused() -> None:
    agent, own, _ = two_planes()
    deleted = ClusterFactory(
        compute_plane=agent.plane, organization=agent.plane.organization, deleted_at=timezone.now()
    )
    response = agent.client.post(USAGE, usage(agent, own.id, deleted.id), format="json")
    assert response.status_code == 200
    assert "refused" not in response.json()  # a soft-deleted cluster is still its plane's
    assert UsageRecord.objects.count() == 2


@pytest.mark.django_db
def test_status_entries_of_another_planes_resources_are_refused_and_never_stored(
    django_capture_on_commit_callbacks: Any,
) -> None:
    agent, own, foreign = two_planes()
    foreign_store = MetastoreFactory(compute_plane=foreign.compute_plane)
    foreign_cache = CacheFactory(compute_plane=foreign.compute_plane)
    before = {k: refused_count("status", k) for k in ("clusters", "metastores", "caches")}
    body = status(
        agent,
        [own.id, foreign.id],
        metastores=[entry(foreign_store.id, phase="running", replicas_ready=1, schema_ready=True)],
        caches=[
            entry(
                foreign_cache.id,
                phase="running",
                master_ready=True,
                workers_ready=1,
                workers_desired=1,
                bytes_used=1,
                bytes_capacity=2,
            )
        ],
    )

    with django_capture_on_commit_callbacks(execute=True):  # the listeners run on commit
        response = agent.client.post(STATUS, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["refused"] == {
        "clusters": [foreign.id],
        "metastores": [foreign_store.id],
        "caches": [foreign_cache.id],
        "entries": 3,
    }
    document = ObservedState.objects.get(compute_plane=agent.plane).document
    assert [c["id"] for c in document["clusters"]] == [own.id]
    assert document["metastores"] == []
    assert document["caches"] == []
    foreign.refresh_from_db()
    own.refresh_from_db()
    assert (own.observed_phase, own.workers_ready) == ("running", 7)
    assert foreign.observed_phase == ""
    assert foreign.workers_ready != 7
    for kind in before:
        assert refused_count("status", kind) == before[kind] + 1


@pytest.mark.buffered_ingest
@pytest.mark.django_db(transaction=True)
def test_the_write_behind_path_refuses_foreign_clusters_too() -> None:
    agent, own, foreign = two_planes()
    before = refused_count("status", "clusters")

    response = agent.client.post(STATUS, status(agent, [own.id, foreign.id]), format="json")

    assert response.status_code == 202, response.content
    assert response.json()["refused"] == {"clusters": [foreign.id], "entries": 1}
    assert refused_count("status", "clusters") == before + 1
    ingest.buffer.flush()
    document = wait_for(
        lambda: (
            (o := ObservedState.objects.filter(compute_plane=agent.plane).first()) and o.document
        )
    )
    assert [c["id"] for c in document["clusters"]] == [own.id]
    foreign.refresh_from_db()
    assert foreign.observed_phase == ""


@pytest.mark.django_db
def test_usage_rows_outlive_the_deletion_of_their_compute_plane_and_organization(owner, org):
    plane = ComputePlaneFactory(organization=org)
    cluster = ClusterFactory(organization=org, compute_plane=plane)
    agent = register(plane)
    assert agent.client.post(USAGE, usage(agent, cluster.id), format="json").status_code == 200

    # Torn down (soft-deleted as the delete workflows leave them), then the organization goes,
    # which removes the soft-deleted rows for good.
    Cluster.objects.filter(pk=cluster.pk).update(deleted_at=timezone.now(), status="deleted")
    ComputePlane.objects.filter(pk=plane.pk).update(deleted_at=timezone.now(), status="deleted")
    response = owner.client.delete(f"/api/v1/orgs/{org.slug}")
    assert response.status_code == 204, response.content
    assert not Organization.objects.filter(pk=org.pk).exists()
    assert not ComputePlane.objects.filter(pk=plane.pk).exists()

    rows = list(UsageRecord.objects.values("compute_plane_id", "resource_id", "nodes", "seconds"))
    assert rows == [
        {"compute_plane_id": plane.pk, "resource_id": cluster.pk, "nodes": 3, "seconds": 300}
    ]
