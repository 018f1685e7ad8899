"""A cluster's whole life in the sandbox with every part real: the API (in this process), a
real Celery worker running the workflows against the in-process emulator, and the compute
plane's real agent process (``python -m computeplane_agent run``, directory target) long-polling
the live server. At each step: the node groups in the emulator, the objects the agent wrote to
its directory, and the cluster's ``ClusterEvent`` rows.

Quick by settings only: the worker re-polls every 0.5 s at most (``LAKEPLANE_MAX_POLL_SECONDS``)
and the agent's long poll is 1 s (``LAKEPLANE_AGENT_MAX_WAIT_SECONDS``), see the ``worker``
fixture in test_computeplane_workflow.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prestodb
import pytest
import requests
import yaml

from computeplane_agent.contract import WORKLOAD_NAMESPACE
from computeplane_agent.render import resource_prefix
from controlplane.clusters.models import Cluster, ClusterEvent
from controlplane.computeplanes import agentinstall
from controlplane.computeplanes.models import ComputePlane
from tests.clusters.test_cluster_lifecycle import node_groups, sizes
from tests.conftest import Caller
from tests.e2e.test_computeplane_workflow import Env, plane_env, worker  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]

LABEL_KEY = "lakeplane.io/node-group"


def api(owner: Caller, suffix: str) -> str:
    return f"/api/v1/orgs/{owner.org.slug}/{suffix}"


def accepted(response: Any) -> tuple[dict[str, Any], str]:
    assert response.status_code == 202, response.content
    data: dict[str, Any] = response.json()
    return data, data["operation"]["id"]


def finished(env: Env, op_id: str) -> None:
    op = env.finish(op_id)
    assert op.status == "succeeded", (
        f"{op.kind}: {op.error_code}: {op.error_message}\n{env.worker.output()[-3000:]}"
    )


def cluster_files(root: Path, cluster_id: str) -> dict[str, dict[str, Any]]:
    """The agent's files of one cluster, by file name (``deployment-lp-cl-…-worker.yaml``)."""
    prefix = resource_prefix(cluster_id)
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in sorted(root.glob("*/*.yaml"))
        if f"-{prefix}-" in path.name or path.name.endswith(f"-{prefix}.yaml")
    }


def deployment(root: Path, cluster_id: str, component: str) -> dict[str, Any]:
    name = f"deployment-{resource_prefix(cluster_id)}-{component}.yaml"
    path = root / WORKLOAD_NAMESPACE / name
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def replicas(root: Path, cluster_id: str) -> dict[str, int]:
    return {
        component: deployment(root, cluster_id, component)["spec"]["replicas"]
        for component in ("coordinator", "worker")
    }


def restart_generation(root: Path, cluster_id: str) -> set[str]:
    return {
        deployment(root, cluster_id, component)["spec"]["template"]["metadata"]["annotations"][
            "lakeplane.io/restart-generation"
        ]
        for component in ("coordinator", "worker")
    }


def events(cluster: Cluster) -> list[tuple[str, str, dict[str, int], dict[str, int]]]:
    return [
        (e.status, e.reason, e.nodes, e.spot_nodes)
        for e in ClusterEvent.objects.filter(cluster=cluster).order_by("at", "id")
    ]


def check_groups(
    env: Env, plane: ComputePlane, cluster: Cluster, *, workers: str, worker_capacity: str
) -> dict[str, dict[str, Any]]:
    groups = node_groups(env.sandbox, plane, cluster)
    assert sorted(groups) == ["coordinator", "workers"]
    for group in groups.values():
        assert group["labels"][LABEL_KEY] == cluster.node_group
        assert group["taints"] == [
            {"key": LABEL_KEY, "value": cluster.node_group, "effect": "NO_SCHEDULE"}
        ]
    assert groups["coordinator"]["capacityType"] == "ON_DEMAND"
    assert groups["workers"]["capacityType"] == worker_capacity
    assert groups["workers"]["instanceTypes"] == [workers]
    return groups


def create_ready_plane(env: Env, owner: Caller) -> ComputePlane:
    account = env.verified_account(owner.org)
    data, op = accepted(
        owner.client.post(
            api(owner, "compute-planes"),
            {"name": "analytics", "cloud_account": account.id, "region": "us-east-1"},
            format="json",
        )
    )
    finished(env, op)
    shown = owner.client.get(api(owner, f"compute-planes/{data['id']}")).json()
    assert shown["status"] == "ready"
    assert shown["agent"]["status"] == "connected"
    assert agentinstall.running_pid(data["id"]) is not None
    return ComputePlane.objects.get(pk=data["id"])


def create_cluster(env: Env, owner: Caller, plane: ComputePlane, **spec: Any) -> Cluster:
    body = {"compute_plane": plane.pk, **spec}
    data, op = accepted(owner.client.post(api(owner, "clusters"), body, format="json"))
    assert data["status"] == "provisioning"
    finished(env, op)
    shown = owner.client.get(api(owner, f"clusters/{data['id']}")).json()
    assert shown["status"] == "running"
    assert shown["workers"]["ready"] == shown["workers"]["desired"] == spec["workers"]["count"]
    return Cluster.objects.get(pk=data["id"])


def act(env: Env, owner: Caller, cluster: Cluster, action: str, body: Any = None) -> str:
    """POST an action (or DELETE), wait for its operation; returns the cluster's status."""
    path = api(owner, f"clusters/{cluster.id}")
    if action == "delete":
        response = owner.client.delete(path)
    else:
        response = owner.client.post(f"{path}/{action}", body, format="json")
    _, op = accepted(response)
    finished(env, op)
    cluster.refresh_from_db()
    return cluster.status


def wait_for(check: Callable[[], Any], what: str, limit: float = 60.0) -> Any:
    deadline = time.monotonic() + limit
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)
    return value


def endpoint(owner: Caller, cluster: Cluster) -> str | None:
    shown: dict[str, Any] = owner.client.get(api(owner, f"clusters/{cluster.id}")).json()
    return shown["endpoint"]


def engine_stats(url: str) -> dict[str, Any] | None:
    """The sandbox engine's /v1/cluster once it has loaded its data; None while it cannot."""
    try:
        if requests.get(f"{url}/v1/info", timeout=2).json()["starting"]:
            return None
        stats: dict[str, Any] = requests.get(f"{url}/v1/cluster", timeout=2).json()
    except requests.RequestException:
        return None
    return stats


def _unreachable(url: str) -> bool:
    try:
        requests.get(f"{url}/v1/info", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def presto_count(url: str) -> Any:
    host, port = url.removeprefix("http://").split(":")
    cur = prestodb.dbapi.connect(host=host, port=int(port), user="e2e").cursor()
    cur.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    return cur.fetchall()


def test_presto_cluster_lifecycle_with_the_real_agent(
    plane_env: Env,  # noqa: F811
    owner: Caller,
    settings: Any,
) -> None:
    env = plane_env
    settings.LAKEPLANE_LOCAL_AGENTS_DIR = str(env.worker.agents)
    plane = create_ready_plane(env, owner)
    root = agentinstall.manifests_dir(plane.pk)

    # --- create: 2 workers; both node groups on-demand, under the cluster's label and taint.
    cluster = create_cluster(
        env,
        owner,
        plane,
        name="adhoc",
        engine="presto",
        coordinator={"instance_type": "m5.xlarge"},
        workers={"instance_type": "m5.xlarge", "count": 2, "max_count": 8},
    )
    groups = check_groups(env, plane, cluster, workers="m5.xlarge", worker_capacity="ON_DEMAND")
    assert groups["workers"]["scalingConfig"] == {"minSize": 1, "maxSize": 8, "desiredSize": 2}
    assert groups["coordinator"]["scalingConfig"]["desiredSize"] == 1
    assert replicas(root, cluster.id) == {"coordinator": 1, "worker": 2}
    files = cluster_files(root, cluster.id)
    kinds = {obj["kind"] for obj in files.values()}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    worker_pod = deployment(root, cluster.id, "worker")["spec"]["template"]["spec"]
    assert worker_pod["nodeSelector"][LABEL_KEY] == cluster.node_group
    assert worker_pod["tolerations"][0]["value"] == cluster.node_group
    assert worker_pod["containers"][0]["image"].endswith("/prestodb/presto:0.292")
    before_restart = restart_generation(root, cluster.id)

    # --- its endpoint is the sandbox engine the supervisor started: a real client queries it.
    # (The supervisor notices the applied coordinator within half a second.)
    url = wait_for(
        lambda: (
            (endpoint(owner, cluster) or "").startswith("http://127.0.0.1:")
            and endpoint(owner, cluster)
        ),
        f"a local endpoint: {(root.parent / 'engines.log').read_text()[-3000:]}",
        limit=20,
    )
    assert wait_for(lambda: engine_stats(url), "the engine is up")["activeWorkers"] == 2
    assert presto_count(url) == [[60175]]

    # --- resize to 5: node group scaling and worker replicas together.
    assert act(env, owner, cluster, "resize", {"workers": 5}) == "running"
    assert sizes(node_groups(env.sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}
    assert node_groups(env.sandbox, plane, cluster)["workers"]["scalingConfig"]["maxSize"] == 8
    assert replicas(root, cluster.id) == {"coordinator": 1, "worker": 5}
    wait_for(lambda: (engine_stats(url) or {}).get("activeWorkers") == 5, "the engine has 5")

    # --- stop: the agent scales the pods to 0, then the node groups go to 0; config kept.
    assert act(env, owner, cluster, "stop") == "stopped"
    assert sizes(node_groups(env.sandbox, plane, cluster)) == {"coordinator": 0, "workers": 0}
    assert replicas(root, cluster.id) == {"coordinator": 0, "worker": 0}
    assert cluster_files(root, cluster.id).keys() == files.keys()  # configuration stays
    assert cluster.workers_desired == 5
    assert endpoint(owner, cluster) is None
    wait_for(lambda: _unreachable(url), "the engine process stops")

    # --- start: back at 5, at the same address.
    assert act(env, owner, cluster, "start") == "running"
    assert sizes(node_groups(env.sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}
    assert replicas(root, cluster.id) == {"coordinator": 1, "worker": 5}
    assert restart_generation(root, cluster.id) == before_restart
    assert endpoint(owner, cluster) == url
    assert wait_for(lambda: engine_stats(url), "the engine is back")["activeWorkers"] == 5
    assert presto_count(url) == [[60175]]

    # --- restart: a new generation in both pod templates; node groups untouched.
    assert act(env, owner, cluster, "restart") == "running"
    after_restart = restart_generation(root, cluster.id)
    assert len(after_restart) == 1
    assert after_restart != before_restart
    assert sizes(node_groups(env.sandbox, plane, cluster)) == {"coordinator": 1, "workers": 5}
    assert replicas(root, cluster.id) == {"coordinator": 1, "worker": 5}

    # --- delete: every file of the cluster gone, and both node groups.
    assert act(env, owner, cluster, "delete") == "deleted"
    assert cluster_files(root, cluster.id) == {}
    assert node_groups(env.sandbox, plane, cluster) == {}
    wait_for(lambda: _unreachable(url), "the deleted cluster's engine stops")

    full2 = {"m5.xlarge": 3}  # coordinator and workers share the instance type: added up
    full5 = {"m5.xlarge": 6}
    assert events(cluster) == [
        ("provisioning", "created", {}, {}),
        ("provisioning", "nodes_changed", full2, {}),
        ("running", "running", full2, {}),
        ("resizing", "resize_requested", full2, {}),
        ("resizing", "nodes_changed", full5, {}),
        ("running", "running", full5, {}),
        ("stopping", "stop_requested", full5, {}),
        ("stopping", "nodes_changed", {}, {}),
        ("stopped", "stopped", {}, {}),
        ("starting", "start_requested", {}, {}),
        ("starting", "nodes_changed", full5, {}),
        ("running", "running", full5, {}),
        ("restarting", "restart_requested", full5, {}),
        ("running", "running", full5, {}),
        ("deleting", "delete_requested", full5, {}),
        ("deleting", "nodes_changed", {}, {}),
        ("deleted", "deleted", {}, {}),
    ]

    # --- a Trino cluster with spot workers on the same plane and agent, to running and gone.
    trino = create_cluster(
        env,
        owner,
        plane,
        name="etl",
        engine="trino",
        coordinator={"instance_type": "m6i.xlarge"},
        workers={"instance_type": "r6i.2xlarge", "count": 3, "max_count": 6, "spot": True},
    )
    groups = check_groups(env, plane, trino, workers="r6i.2xlarge", worker_capacity="SPOT")
    assert groups["workers"]["scalingConfig"] == {"minSize": 1, "maxSize": 6, "desiredSize": 3}
    assert replicas(root, trino.id) == {"coordinator": 1, "worker": 3}
    trino_pod = deployment(root, trino.id, "worker")["spec"]["template"]["spec"]
    assert trino_pod["containers"][0]["image"].endswith("/trinodb/trino:476")
    assert trino_pod["nodeSelector"]["eks.amazonaws.com/capacityType"] == "SPOT"
    assert events(trino)[:3] == [
        ("provisioning", "created", {}, {}),
        ("provisioning", "nodes_changed", {"m6i.xlarge": 1, "r6i.2xlarge": 3}, {"r6i.2xlarge": 3}),
        ("running", "running", {"m6i.xlarge": 1, "r6i.2xlarge": 3}, {"r6i.2xlarge": 3}),
    ]
    assert act(env, owner, trino, "delete") == "deleted"
    assert cluster_files(root, trino.id) == {}
    assert node_groups(env.sandbox, plane, trino) == {}

    env.delete(plane)  # allowed now that both clusters are deleted; stops the agent
    assert agentinstall.running_pid(plane.pk) is None
