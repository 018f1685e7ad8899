"""A ready compute plane in the emulator and an agent that also reports caches.

The compute plane and the engine driver are the clusters tests' (tests/clusters/conftest.py);
the agent here speaks the same agent API and adds, for every cache in the desired state, a
contract ``CacheStatus`` with usage counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from tests.agentapi.conftest import STATUS, register
from tests.clusters.conftest import SimulatedAgent, ready_plane, verified_account

__all__ = ["CacheAgent", "ready_plane", "verified_account"]

GIB = 1024**3


@dataclass
class CacheAgent(SimulatedAgent):
    """Reports clusters as SimulatedAgent does, and every desired cache with its usage."""

    master_ready: bool = True
    cache_workers_ready: int | None = None
    bytes_used: int = 12 * GIB
    hit_ratio: float | None = 0.87

    def report(self) -> dict[str, Any]:
        doc = self.desired()
        now = timezone.now().isoformat()
        clusters = [
            {
                "id": spec["id"],
                "phase": "running" if spec["state"] == "running" else "stopped",
                "coordinator_ready": spec["state"] == "running",
                "workers_ready": spec["workers"]["replicas"] if spec["state"] == "running" else 0,
                "workers_desired": spec["workers"]["replicas"] if spec["state"] == "running" else 0,
                "observed_at": now,
            }
            for spec in doc["clusters"]
        ]
        caches = []
        for spec in doc.get("caches", []):
            workers = spec["workers"]
            ready = (
                workers
                if self.cache_workers_ready is None
                else min(workers, self.cache_workers_ready)
            )
            caches.append(
                {
                    "id": spec["id"],
                    "phase": "running" if self.master_ready and ready == workers else "starting",
                    "master_ready": self.master_ready,
                    "workers_ready": ready,
                    "workers_desired": workers,
                    "bytes_used": self.bytes_used,
                    "bytes_capacity": workers * spec["size_gb_per_worker"] * GIB,
                    "hit_ratio": self.hit_ratio,
                    "observed_at": now,
                }
            )
        body = {
            "agent_id": self.agent.agent_id,
            "report_id": uuid.uuid4().hex,
            "applied_version": doc["version"],
            "sent_at": now,
            "clusters": clusters,
            "caches": caches,
        }
        with self.capture(execute=True):
            response = self.agent.client.post(STATUS, body, format="json")
        assert response.status_code == 200, response.content
        self.reports.append(body)
        return body


@pytest.fixture
def cache_agent(ready_plane, django_capture_on_commit_callbacks) -> CacheAgent:
    return CacheAgent(register(ready_plane), django_capture_on_commit_callbacks)
