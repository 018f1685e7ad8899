"""A cache's life through the API against the emulator: its node group in EKS, its spec in the
compute plane's desired state, the agent's reports through the agent API; and a cache outliving
the cluster that read through it."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.caching.models import Cache
from controlplane.core.models import Operation
from controlplane.sandbox.customers import admin_client
from tests.caching.conftest import GIB, CacheAgent
from tests.clusters.conftest import drive

pytestmark = pytest.mark.django_db

LABEL_KEY = "lakeplane.io/node-group"


def url(owner, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/caches{suffix}"


def body(plane) -> dict[str, Any]:
    return {
        "name": "hot-lake",
        "compute_plane": plane.id,
        "workers": 3,
        "medium": "nvme",
        "size_gb_per_worker": 1500,
        "mounts": [
            {"path": "/warehouse", "uri": "s3://acme-lake/warehouse"},
            {"path": "/onprem", "uri": "hdfs://namenode.corp.example:8020/data"},
        ],
        "policies": [
            {"type": "preload", "path": "/warehouse/hot", "schedule": "0 3 * * *"},
            {"type": "pin", "path": "/warehouse/dims"},
            {"type": "ttl", "path": "/onprem/tmp", "seconds": 3600},
            {"type": "write_back"},
        ],
    }


def node_groups(sandbox, plane, owner_id: str) -> dict[str, dict[str, Any]]:
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = plane.resources["eks_cluster_name"]
    found = {}
    for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
        described = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        tags = described["tags"]
        if owner_id in (tags.get("lakeplane:cache"), tags.get("lakeplane:cluster")):
            found[group] = described
    return found


def accepted(response) -> tuple[dict[str, Any], str]:
    assert response.status_code == 202, response.content
    data = response.json()
    return data, data["operation"]["id"]


def run(op: str, agent: CacheAgent) -> None:
    driven = drive(op, agent)
    assert driven.operation.status == "succeeded", (
        driven.operation.error_code,
        driven.operation.error_message,
    )
    assert driven.waits >= 1  # it waited for the agent's report at least once


def cache_spec(agent: CacheAgent, cache_id: str) -> dict[str, Any] | None:
    return next((c for c in agent.desired()["caches"] if c["id"] == cache_id), None)


def test_create_update_delete(owner, sandbox, ready_plane, cache_agent):
    plane = ready_plane
    data, op = accepted(owner.client.post(url(owner), body(plane), format="json"))
    cache = Cache.objects.get(pk=data["id"])
    steps = Operation.objects.get(pk=op).steps.order_by("position")
    assert [s.name for s in steps] == ["node_group", "publish_desired_state", "wait_for_agent"]

    # --- create: one on-demand node group of three i4i nodes under the cache's own label.
    run(op, cache_agent)
    groups = node_groups(sandbox, plane, cache.id)
    assert list(groups) == [f"{cache.node_group}-workers"]
    group = groups[f"{cache.node_group}-workers"]
    assert group["labels"][LABEL_KEY] == cache.node_group
    assert group["taints"] == [
        {"key": LABEL_KEY, "value": cache.node_group, "effect": "NO_SCHEDULE"}
    ]
    assert group["capacityType"] == "ON_DEMAND"
    assert group["instanceTypes"] == ["i4i.2xlarge"]
    assert group["scalingConfig"] == {"minSize": 3, "maxSize": 3, "desiredSize": 3}
    assert group["tags"]["lakeplane:managed-by"] == "lakeplane"
    spec = cache_spec(cache_agent, cache.id)
    assert spec is not None
    assert spec["node_group"] == cache.node_group
    assert (spec["medium"], spec["workers"], spec["size_gb_per_worker"]) == ("nvme", 3, 1500)
    assert spec["version"] == "2.9.5"
    assert spec["mounts"] == body(plane)["mounts"]
    assert spec["policies"] == {
        "preload": [{"path": "/warehouse/hot", "schedule": "0 3 * * *"}],
        "pin": ["/warehouse/dims"],
        "ttl": [{"path": "/onprem/tmp", "seconds": 3600, "action": "free"}],
        "write_back": True,
    }
    shown = owner.client.get(url(owner, f"/{cache.id}")).json()
    assert shown["status"] == "ready"
    assert shown["workers"] == {"desired": 3, "ready": 3}
    assert shown["master"] == {"ready": True}
    assert shown["usage"]["bytes_used"] == 12 * GIB
    assert shown["usage"]["bytes_capacity"] == 3 * 1500 * GIB
    assert shown["usage"]["hit_ratio"] == 0.87
    assert shown["usage"]["observed_at"] is not None

    # --- update: a fourth worker (node group and spec together), a new pin.
    change = {
        "workers": 4,
        "policies": [*body(plane)["policies"], {"type": "pin", "path": "/onprem"}],
    }
    _, op = accepted(owner.client.patch(url(owner, f"/{cache.id}"), change, format="json"))
    run(op, cache_agent)
    group = node_groups(sandbox, plane, cache.id)[f"{cache.node_group}-workers"]
    assert group["scalingConfig"] == {"minSize": 4, "maxSize": 4, "desiredSize": 4}
    spec = cache_spec(cache_agent, cache.id)
    assert spec is not None
    assert spec["workers"] == 4
    assert spec["policies"]["pin"] == ["/warehouse/dims", "/onprem"]
    assert owner.client.get(url(owner, f"/{cache.id}")).json()["workers"] == {
        "desired": 4,
        "ready": 4,
    }

    # --- delete: out of the desired state, the agent's report no longer lists it, node group gone.
    _, op = accepted(owner.client.delete(url(owner, f"/{cache.id}")))
    run(op, cache_agent)
    assert cache_spec(cache_agent, cache.id) is None
    assert node_groups(sandbox, plane, cache.id) == {}
    cache.refresh_from_db()
    assert cache.status == "deleted"
    assert cache.deleted_at is not None


def test_the_cache_is_not_ready_until_every_worker_is_reported_ready(
    owner, sandbox, ready_plane, cache_agent
):
    _, op = accepted(owner.client.post(url(owner), body(ready_plane), format="json"))
    cache_agent.cache_workers_ready = 1  # two of three workers' nodes are still joining
    driven = drive(op, cache_agent, stop_after_waits=3)
    assert driven.operation.status == "running"
    cache = Cache.objects.get()
    assert cache.status == "provisioning"
    assert (cache.master_ready, cache.workers_ready) == (True, 1)
    assert "workers 1/3 ready" in driven.operation.steps.get(name="wait_for_agent").detail

    cache_agent.cache_workers_ready = None
    assert drive(op, cache_agent).operation.status == "succeeded"
    cache.refresh_from_db()
    assert cache.status == "ready"


def test_a_cache_outlives_the_cluster_that_reads_through_it(
    owner, sandbox, ready_plane, cache_agent
):
    plane = ready_plane
    data, op = accepted(owner.client.post(url(owner), body(plane), format="json"))
    run(op, cache_agent)
    cache_id = data["id"]
    cluster_body = {
        "name": "adhoc",
        "compute_plane": plane.id,
        "engine": "trino",
        "coordinator": {"instance_type": "m6i.xlarge"},
        "workers": {"instance_type": "r6i.2xlarge", "count": 2},
        "cache": cache_id,
    }
    clusters = f"/api/v1/orgs/{owner.org.slug}/clusters"
    cluster, op = accepted(owner.client.post(clusters, cluster_body, format="json"))
    run(op, cache_agent)
    spec = next(c for c in cache_agent.desired()["clusters"] if c["id"] == cluster["id"])
    assert spec["cache"] == cache_id
    assert owner.client.get(url(owner, f"/{cache_id}")).json()["clusters"] == [cluster["id"]]
    # In use: the cache cannot go.
    assert owner.client.delete(url(owner, f"/{cache_id}")).status_code == 409

    # Stop, then delete the cluster: the cache stays in the desired state, warm, its node group
    # untouched, and the agent keeps reporting it.
    _, op = accepted(owner.client.post(f"{clusters}/{cluster['id']}/stop"))
    run(op, cache_agent)
    assert cache_spec(cache_agent, cache_id) is not None
    _, op = accepted(owner.client.delete(f"{clusters}/{cluster['id']}"))
    run(op, cache_agent)
    assert cache_agent.desired()["clusters"] == []
    assert cache_spec(cache_agent, cache_id) is not None
    groups = node_groups(sandbox, plane, cache_id)
    assert [g["scalingConfig"]["desiredSize"] for g in groups.values()] == [3]
    assert node_groups(sandbox, plane, cluster["id"]) == {}
    shown = owner.client.get(url(owner, f"/{cache_id}")).json()
    assert shown["status"] == "ready"
    assert shown["clusters"] == []
    assert shown["usage"]["bytes_used"] == 12 * GIB

    # The next cluster reads through the same, still warm, cache.
    second, op = accepted(
        owner.client.post(clusters, {**cluster_body, "name": "etl"}, format="json")
    )
    run(op, cache_agent)
    assert owner.client.get(url(owner, f"/{cache_id}")).json()["clusters"] == [second["id"]]


def test_a_node_group_name_held_by_someone_else_fails_the_cache(
    owner, sandbox, ready_plane, cache_agent
):
    plane = ready_plane
    data, op = accepted(owner.client.post(url(owner), body(plane), format="json"))
    cache = Cache.objects.get(pk=data["id"])
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    eks.create_nodegroup(
        clusterName=plane.resources["eks_cluster_name"],
        nodegroupName=f"{cache.node_group}-workers",
        nodeRole=plane.resources["node_role_arn"],
        subnets=plane.resources["private_subnet_ids"],
        tags={"owner": "someone-else"},
    )
    driven = drive(op, cache_agent)
    assert driven.operation.status == "failed"
    assert driven.operation.error_code == "resource_conflict"
    cache.refresh_from_db()
    assert cache.status == "failed"
    # Its delete leaves the stranger's node group alone.
    _, op = accepted(owner.client.delete(url(owner, f"/{cache.id}")))
    assert drive(op, cache_agent).operation.status == "succeeded"
    assert eks.describe_nodegroup(
        clusterName=plane.resources["eks_cluster_name"], nodegroupName=f"{cache.node_group}-workers"
    )["nodegroup"]["tags"] == {"owner": "someone-else"}


def test_a_delete_the_agent_never_confirms_removes_the_node_group_after_bounded_polls(
    owner, sandbox, ready_plane, cache_agent
):
    from controlplane.computeplanes.workflows import AGENT_DELETE_WAIT_POLLS as DELETE_WAIT_POLLS

    data, op = accepted(owner.client.post(url(owner), body(ready_plane), format="json"))
    run(op, cache_agent)
    _, op = accepted(owner.client.delete(url(owner, f"/{data['id']}")))
    driven = drive(op, None, max_deliveries=DELETE_WAIT_POLLS + 10)  # the agent is gone
    assert driven.operation.status == "succeeded"
    assert driven.waits == DELETE_WAIT_POLLS - 1
    assert "did not confirm" in driven.operation.steps.get(name="wait_for_agent").detail
    assert node_groups(sandbox, ready_plane, data["id"]) == {}
    assert Cache.objects.get(pk=data["id"]).status == "deleted"
