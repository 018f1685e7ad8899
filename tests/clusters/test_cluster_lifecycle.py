"""A cluster's whole life through the API: node groups in the emulator, desired state to the
agent, the agent's reports through the agent API (see conftest.py for how the engine is driven)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.clusters.models import Cluster, ClusterEvent
from controlplane.core.models import Operation
from controlplane.sandbox.customers import admin_client
from tests.clusters.conftest import SimulatedAgent, drive

pytestmark = pytest.mark.django_db

LABEL_KEY = "lakeplane.io/node-group"


def url(owner, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/clusters{suffix}"


def body(plane, **workers: Any) -> dict[str, Any]:
    return {
        "name": "adhoc",
        "compute_plane": plane.id,
        "engine": "trino",
        "coordinator": {"instance_type": "m6i.xlarge"},
        "workers": {"instance_type": "r6i.2xlarge", "count": 3, "max_count": 8, **workers},
        "catalogs": [],
        "cache": None,
    }


def node_groups(sandbox, plane, cluster: Cluster) -> dict[str, dict[str, Any]]:
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = plane.resources["eks_cluster_name"]
    found = {}
    for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
        described = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
        if described["tags"].get("lakeplane:cluster") == cluster.id:
            found[group.removeprefix(f"{cluster.node_group}-")] = described
    return found


def sizes(groups: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {role: g["scalingConfig"]["desiredSize"] for role, g in groups.items()}


def accepted(response, owner) -> tuple[dict[str, Any], str]:
    assert response.status_code == 202, response.content
    data = response.json()
    op = data["operation"]["id"]
    assert response["Location"] == f"/api/v1/orgs/{owner.org.slug}/operations/{op}"
    return data, op


def run(op: str, agent: SimulatedAgent) -> None:
    driven = drive(op, agent)
    assert driven.operation.status == "succeeded", (
        driven.operation.error_code,
        driven.operation.error_message,
    )
    # The operation waited for the agent at least once before it could succeed.
    assert driven.waits >= 1


def the_spec(agent: SimulatedAgent, cluster_id: str) -> dict[str, Any] | None:
    return next((c for c in agent.desired()["clusters"] if c["id"] == cluster_id), None)


def test_create_resize_stop_start_restart_delete(owner, sandbox, ready_plane, sim_agent):
    plane = ready_plane
    data, op = accepted(owner.client.post(url(owner), body(plane, spot=True), format="json"), owner)
    cluster = Cluster.objects.get(pk=data["id"])
    assert data["status"] == "provisioning"
    assert data["catalogs"] == []
    assert data["cache"] is None
    steps = list(
        Operation.objects.get(pk=op).steps.order_by("position").values_list("name", flat=True)
    )
    assert steps == ["node_groups", "publish_desired_state", "wait_for_agent"]

    # --- create: two node groups under one label, the coordinator on-demand, workers spot.
    run(op, sim_agent)
    groups = node_groups(sandbox, plane, cluster)
    assert sorted(groups) == ["coordinator", "workers"]
    for group in groups.values():
        assert group["labels"][LABEL_KEY] == cluster.node_group
        assert group["taints"] == [
            {"key": LABEL_KEY, "value": cluster.node_group, "effect": "NO_SCHEDULE"}
        ]
        assert sorted(group["subnets"]) == sorted(plane.resources["private_subnet_ids"])
        assert group["nodeRole"] == plane.resources["node_role_arn"]
    assert groups["coordinator"]["capacityType"] == "ON_DEMAND"
    assert groups["workers"]["capacityType"] == "SPOT"
    assert groups["coordinator"]["instanceTypes"] == ["m6i.xlarge"]
    assert groups["workers"]["instanceTypes"] == ["r6i.2xlarge"]
    assert groups["workers"]["scalingConfig"] == {"minSize": 1, "maxSize": 8, "desiredSize": 3}
    spec = the_spec(sim_agent, cluster.id)
    assert spec is not None
    assert spec["state"] == "running"
    assert spec["node_group"] == cluster.node_group
    assert spec["workers"] == {
        "instance_type": "r6i.2xlarge",
        "replicas": 3,
        "spot": True,
        "max_replicas": 8,
    }
    shown = owner.client.get(url(owner, f"/{cluster.id}")).json()
    assert shown["status"] == "running"
    assert shown["workers"]["ready"] == 3
    assert shown["workers"]["desired"] == 3
    assert shown["endpoint"] == (
        f"http://lp-{cluster.id.replace('_', '-')}-coordinator.lakeplane-workloads.svc:8080"
    )

    # --- resize: node group scaling and worker replicas together.
    _, op = accepted(
        owner.client.post(url(owner, f"/{cluster.id}/resize"), {"workers": 5}, format="json"),
        owner,
    )
    assert owner.client.get(url(owner, f"/{cluster.id}")).json()["status"] == "resizing"
    run(op, sim_agent)
    assert sizes(node_groups(sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}
    assert the_spec(sim_agent, cluster.id)["workers"]["replicas"] == 5
    assert owner.client.get(url(owner, f"/{cluster.id}")).json()["workers"]["ready"] == 5

    # --- stop: the configuration stays, the agent stops it, then the nodes go to zero.
    _, op = accepted(owner.client.post(url(owner, f"/{cluster.id}/stop")), owner)
    run(op, sim_agent)
    assert sizes(node_groups(sandbox, plane, cluster)) == {"coordinator": 0, "workers": 0}
    spec = the_spec(sim_agent, cluster.id)
    assert spec["state"] == "stopped"
    assert spec["workers"]["replicas"] == 5
    cluster.refresh_from_db()
    assert cluster.status == "stopped"
    assert cluster.workers_desired == 5

    # --- start: back at the size it had.
    _, op = accepted(owner.client.post(url(owner, f"/{cluster.id}/start")), owner)
    run(op, sim_agent)
    assert sizes(node_groups(sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}
    assert the_spec(sim_agent, cluster.id)["state"] == "running"

    # --- restart: a new generation rolls the pods; the node groups are untouched.
    _, op = accepted(owner.client.post(url(owner, f"/{cluster.id}/restart")), owner)
    run(op, sim_agent)
    assert the_spec(sim_agent, cluster.id)["restart_generation"] == 1
    assert sizes(node_groups(sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}

    # --- delete: out of the desired state, the agent confirms, the node groups go.
    _, op = accepted(owner.client.delete(url(owner, f"/{cluster.id}")), owner)
    run(op, sim_agent)
    assert the_spec(sim_agent, cluster.id) is None
    assert node_groups(sandbox, plane, cluster) == {}
    cluster.refresh_from_db()
    assert cluster.status == "deleted"
    assert cluster.deleted_at is not None

    # --- the events: every state change, with the nodes asked for from then on.
    events = [
        (e.status, e.reason, e.nodes, e.spot_nodes)
        for e in ClusterEvent.objects.filter(cluster=cluster).order_by("at", "id")
    ]
    full3 = {"m6i.xlarge": 1, "r6i.2xlarge": 3}
    full5 = {"m6i.xlarge": 1, "r6i.2xlarge": 5}
    assert events == [
        ("provisioning", "created", {}, {}),
        ("provisioning", "nodes_changed", full3, {"r6i.2xlarge": 3}),
        ("running", "running", full3, {"r6i.2xlarge": 3}),
        ("resizing", "resize_requested", full3, {"r6i.2xlarge": 3}),
        ("resizing", "nodes_changed", full5, {"r6i.2xlarge": 5}),
        ("running", "running", full5, {"r6i.2xlarge": 5}),
        ("stopping", "stop_requested", full5, {"r6i.2xlarge": 5}),
        ("stopping", "nodes_changed", {}, {}),
        ("stopped", "stopped", {}, {}),
        ("starting", "start_requested", {}, {}),
        ("starting", "nodes_changed", full5, {"r6i.2xlarge": 5}),
        ("running", "running", full5, {"r6i.2xlarge": 5}),
        ("restarting", "restart_requested", full5, {"r6i.2xlarge": 5}),
        ("running", "running", full5, {"r6i.2xlarge": 5}),
        ("deleting", "delete_requested", full5, {"r6i.2xlarge": 5}),
        ("deleting", "nodes_changed", {}, {}),
        ("deleted", "deleted", {}, {}),
    ]


def test_the_cluster_is_not_running_until_every_worker_is_reported_ready(
    owner, sandbox, ready_plane, sim_agent
):
    _, op = accepted(owner.client.post(url(owner), body(ready_plane), format="json"), owner)
    sim_agent.ready_workers = 1  # two of three workers' nodes are still joining
    driven = drive(op, sim_agent, stop_after_waits=3)
    assert driven.operation.status == "running"
    cluster = Cluster.objects.get()
    assert cluster.status == "provisioning"
    assert (cluster.coordinator_ready, cluster.workers_ready) == (True, 1)
    wait = driven.operation.steps.get(name="wait_for_agent")
    assert "workers 1/3 ready" in wait.detail

    sim_agent.ready_workers = None
    driven = drive(op, sim_agent)
    assert driven.operation.status == "succeeded"
    cluster.refresh_from_db()
    assert cluster.status == "running"


def test_a_second_cluster_keeps_the_first_in_the_desired_state(
    owner, sandbox, ready_plane, sim_agent
):
    _, first = accepted(owner.client.post(url(owner), body(ready_plane), format="json"), owner)
    run(first, sim_agent)
    second = {**body(ready_plane), "name": "etl", "engine": "presto"}
    data, op = accepted(owner.client.post(url(owner), second, format="json"), owner)
    run(op, sim_agent)
    names = sorted(c["name"] for c in sim_agent.desired()["clusters"])
    assert names == ["adhoc", "etl"]
    assert Cluster.objects.get(pk=data["id"]).version == "0.292"


def test_a_delete_the_agent_never_confirms_removes_the_node_groups_after_bounded_polls(
    owner, sandbox, ready_plane, sim_agent
):
    from controlplane.computeplanes.workflows import AGENT_DELETE_WAIT_POLLS as DELETE_WAIT_POLLS

    data, op = accepted(owner.client.post(url(owner), body(ready_plane), format="json"), owner)
    run(op, sim_agent)
    cluster = Cluster.objects.get(pk=data["id"])
    _, op = accepted(owner.client.delete(url(owner, f"/{cluster.id}")), owner)

    driven = drive(op, None, max_deliveries=DELETE_WAIT_POLLS + 10)  # the agent is gone

    assert driven.operation.status == "succeeded"
    # DELETE_WAIT_POLLS polls in all: every one but the last had to wait.
    assert driven.waits == DELETE_WAIT_POLLS - 1
    assert "did not confirm" in driven.operation.steps.get(name="wait_for_agent").detail
    assert node_groups(sandbox, ready_plane, cluster) == {}
    cluster.refresh_from_db()
    assert cluster.status == "deleted"
