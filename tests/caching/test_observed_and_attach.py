"""Cache usage from the agent's status reports (through the agent API), the desired-state
builder's query count, and resolve_cache, which the clusters app attaches caches with."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from controlplane.caching.desired import cache_specs
from controlplane.caching.models import Cache
from controlplane.caching.services import resolve_cache
from controlplane.core.errors import Conflict, InvalidInput, NotFound
from tests.agentapi.conftest import STATUS, Agent, register
from tests.factories import CacheFactory, ComputePlaneFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(owner) -> Agent:
    return register(ComputePlaneFactory(organization=owner.org))


def post_report(agent: Agent, capture: Any, caches: list[dict[str, Any]], **extra: Any) -> None:
    now = timezone.now()
    body = {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "applied_version": 7,
        "sent_at": now.isoformat(),
        "clusters": [],
        "caches": caches,
        **extra,
    }
    with capture(execute=True):
        response = agent.client.post(STATUS, body, format="json")
    assert response.status_code == 200, response.content


def status(cache: Cache, **extra: Any) -> dict[str, Any]:
    return {
        "id": cache.id,
        "phase": "running",
        "master_ready": True,
        "workers_ready": 2,
        "workers_desired": 2,
        "bytes_used": 5_000_000_000,
        "bytes_capacity": 68_719_476_736,
        "hit_ratio": 0.42,
        "observed_at": timezone.now().isoformat(),
        **extra,
    }


def test_usage_from_a_report_is_stored_and_shown(owner, agent, django_capture_on_commit_callbacks):
    cache = CacheFactory(organization=owner.org, compute_plane=agent.plane)
    other_plane = CacheFactory(organization=owner.org)
    post_report(agent, django_capture_on_commit_callbacks, [status(cache)])
    cache.refresh_from_db()
    assert (cache.observed_phase, cache.master_ready, cache.workers_ready) == ("running", True, 2)
    assert (cache.bytes_used, cache.bytes_capacity, cache.hit_ratio) == (
        5_000_000_000,
        68_719_476_736,
        0.42,
    )
    assert cache.observed_version == 7
    shown = owner.client.get(f"/api/v1/orgs/{owner.org.slug}/caches/{cache.id}").json()
    assert shown["usage"]["bytes_used"] == 5_000_000_000
    assert shown["usage"]["hit_ratio"] == 0.42
    assert shown["workers"]["ready"] == 2

    # A report naming a cache of another compute plane changes nothing there.
    post_report(agent, django_capture_on_commit_callbacks, [status(other_plane)])
    other_plane.refresh_from_db()
    assert other_plane.observed_at is None


def test_a_report_with_extra_fields_in_a_cache_status_is_refused(
    owner, agent, django_capture_on_commit_callbacks
):
    """Counts only: a path or file name in the cache status is not part of the contract."""
    cache = CacheFactory(organization=owner.org, compute_plane=agent.plane)
    body = {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "sent_at": timezone.now().isoformat(),
        "caches": [status(cache, hottest_file="/warehouse/salaries.parquet")],
    }
    response = agent.client.post(STATUS, body, format="json")
    assert response.status_code in (400, 422)
    cache.refresh_from_db()
    assert cache.observed_at is None


def test_a_report_without_caches_costs_the_listener_no_query(
    owner, agent, django_capture_on_commit_callbacks, django_assert_num_queries
):
    from computeplane_agent import contract
    from controlplane.caching.observed import on_status_reported

    CacheFactory(organization=owner.org, compute_plane=agent.plane)
    report = contract.StatusReport(
        agent_id=agent.agent_id, report_id=uuid.uuid4().hex, sent_at=timezone.now()
    )
    with django_assert_num_queries(0):
        on_status_reported(None, reports=[(agent.plane.id, report)])


def test_a_batch_of_planes_sets_each_planes_own_caches_in_the_same_queries_for_1_or_6(owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from computeplane_agent import contract
    from controlplane.agentapi.services import agent_id_for
    from controlplane.caching.observed import on_status_reported

    counts = []
    for size in (1, 6):
        planes = [ComputePlaneFactory(organization=owner.org) for _ in range(size)]
        caches = [CacheFactory(organization=owner.org, compute_plane=plane) for plane in planes]
        elsewhere = CacheFactory(organization=owner.org)  # of a plane outside the batch
        gone = CacheFactory(
            organization=owner.org,
            compute_plane=planes[0],
            status="deleted",
            deleted_at=timezone.now(),
        )
        batch = [
            (
                plane.id,
                contract.StatusReport(
                    agent_id=agent_id_for(plane.id),
                    report_id=uuid.uuid4().hex,
                    applied_version=7,
                    sent_at=timezone.now(),
                    caches=[
                        contract.CacheStatus.model_validate(status(listed))
                        for listed in (cache, elsewhere, gone)
                    ],
                ),
            )
            for plane, cache in zip(planes, caches, strict=True)
        ]
        with CaptureQueriesContext(connection) as queries:
            on_status_reported(None, reports=batch)
        counts.append(len(queries))
        for cache in caches:
            cache.refresh_from_db()
            assert (cache.observed_version, cache.observed_phase, cache.workers_ready) == (
                7,
                "running",
                2,
            )
        for untouched in (elsewhere, gone):
            untouched.refresh_from_db()
            assert untouched.observed_at is None
    assert counts[0] == counts[1]


def test_cache_specs_are_one_query_for_any_number_of_caches(owner, django_assert_num_queries):
    plane = ComputePlaneFactory(organization=owner.org)
    CacheFactory.create_batch(5, organization=owner.org, compute_plane=plane)
    CacheFactory(organization=owner.org, compute_plane=plane, status="deleting")
    CacheFactory(
        organization=owner.org,
        compute_plane=plane,
        status="deleted",
        deleted_at=timezone.now() - timedelta(days=1),
    )
    with django_assert_num_queries(1):
        specs = cache_specs(plane)
    assert len(specs) == 5


def test_resolve_cache_for_a_cluster(owner):
    plane = ComputePlaneFactory(organization=owner.org)
    cache = CacheFactory(organization=owner.org, compute_plane=plane)
    assert resolve_cache(owner.org, cache.id, plane) == cache

    foreign = CacheFactory(organization=OrganizationFactory())
    for unknown in (foreign.id, "cache_00000000000000000000000000"):
        with pytest.raises(NotFound) as missing:
            resolve_cache(owner.org, unknown, plane)
        assert "cache" in missing.value.errors

    elsewhere = CacheFactory(organization=owner.org)
    with pytest.raises(InvalidInput) as wrong_plane:
        resolve_cache(owner.org, elsewhere.id, plane)
    assert "cache" in wrong_plane.value.errors

    for state in ("provisioning", "failed", "deleting"):
        Cache.objects.filter(pk=cache.pk).update(status=state)
        with pytest.raises(Conflict) as not_serving:
            resolve_cache(owner.org, cache.id, plane)
        assert "cache" in not_serving.value.errors
