"""Clusters with events, and usage reports sent through the real agent API."""

from __future__ import annotations

import uuid
from datetime import datetime

from controlplane.clusters.models import Cluster, ClusterEvent
from tests.agentapi.conftest import USAGE, Agent


def event(cluster: Cluster, at: datetime, nodes: dict[str, int], status: str = "running") -> None:
    ClusterEvent.objects.create(
        cluster=cluster,
        organization_id=cluster.organization_id,
        at=at,
        status=status,
        reason="test",
        nodes=nodes,
    )


def report(
    agent: Agent,
    start: datetime,
    end: datetime,
    samples: list[tuple[str, str, int]] | list[dict[str, object]],
    report_id: str | None = None,
) -> str:
    """POST a usage report: samples are (cluster id, instance type, nodes) for the period, as in
    the first contract, or contract samples naming their role (``seconds`` filled in)."""
    report_id = report_id or uuid.uuid4().hex
    seconds = int((end - start).total_seconds())
    body = {
        "agent_id": agent.agent_id,
        "report_id": report_id,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "samples": [
            {"seconds": seconds, **s}
            if isinstance(s, dict)
            else {"cluster_id": s[0], "instance_type": s[1], "nodes": s[2], "seconds": seconds}
            for s in samples
        ],
    }
    response = agent.client.post(USAGE, body, format="json")
    assert response.status_code in (200, 201, 202), response.content
    return report_id
