"""Many gateway replicas asking at the same moment start a stopped cluster once: each request
runs in its own thread with its own database connection, as they would in the server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from controlplane.clusters.models import Cluster
from controlplane.core.models import Operation
from tests.agentapi.conftest import register
from tests.factories import ClusterFactory, ComputePlaneFactory

REPLICAS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_wake_requests_start_the_cluster_once():
    plane = ComputePlaneFactory()
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane, status="stopped")
    agent = register(plane)
    barrier = threading.Barrier(REPLICAS)

    def ask(_: int) -> tuple[int, dict]:
        try:
            barrier.wait()
            response = agent.client.post(
                "/api/agent/v1/wake",
                {"agent_id": agent.agent_id, "cluster_id": cluster.id},
                format="json",
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(REPLICAS) as pool:
        answers = list(pool.map(ask, range(REPLICAS)))

    codes = sorted(code for code, _ in answers)
    assert codes == [200] * (REPLICAS - 1) + [202], answers
    assert len({body["operation"] for _, body in answers}) == 1
    assert Operation.objects.filter(kind="cluster.start", target_id=cluster.id).count() == 1
    assert Cluster.objects.get(pk=cluster.id).status == "starting"
