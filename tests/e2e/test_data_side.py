"""The data side of a deployment in the sandbox, every part real: a managed metastore (an RDS
instance in the emulator, the Hive metastore objects in the agent's directory), a Hive catalog on
it and a PostgreSQL catalog whose password is a Secrets Manager ARN in the customer's emulated
account, both attached to a Trino and a PrestoDB cluster, and an Alluxio cache one cluster reads
through. A catalog PATCH reaches both clusters: Trino through CREATE/DROP CATALOG with no pod
template changed, PrestoDB through a rolling restart of its pods. A planted secret value never
leaves the "customer" side: not in the control plane's database, logs or API responses, not in
any rendered ConfigMap; only in the Secrets the agent writes. The cache outlives its cluster.

Same machinery as test_cluster_lifecycle.py: the API in this process, a real Celery worker, the
compute plane's real agent process (directory target) long-polling the live server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.apps import apps
from django.core import serializers

from computeplane_agent.render import resource_prefix
from controlplane.clusters.models import Cluster
from controlplane.computeplanes import agentinstall
from controlplane.computeplanes.models import ComputePlane
from controlplane.sandbox.customers import admin_client
from tests.conftest import Caller
from tests.e2e.test_cluster_lifecycle import (
    accepted,
    act,
    api,
    create_cluster,
    create_ready_plane,
    deployment,
    finished,
)
from tests.e2e.test_computeplane_workflow import Env, plane_env, worker  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]

PLANTED = "pl4nted-Customer-Secret-9d0c"  # the value that must never leave the customer side


class Recorder:
    """Every API response body of the test, to search for the planted value at the end."""

    def __init__(self, owner: Caller) -> None:
        self.owner = owner
        self.bodies: list[bytes] = []

    def call(self, method: str, suffix: str, body: Any = None) -> Any:
        client = self.owner.client
        path = api(self.owner, suffix)
        if method == "get":
            response = client.get(path)
        else:
            response = getattr(client, method)(path, body, format="json")
        self.bodies.append(response.content)
        return response


def files(root: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in sorted(root.glob(f"*/{kind.lower()}-*.yaml"))
    }


def pod_templates(root: Path, cluster: Cluster) -> dict[str, Any]:
    return {
        component: deployment(root, cluster.id, component)["spec"]["template"]
        for component in ("coordinator", "worker")
    }


def propagation(recorder: Recorder, catalog_id: str) -> dict[str, tuple[int, str]]:
    shown = recorder.call("get", f"catalogs/{catalog_id}").json()
    return {p["cluster"]: (p["version"], p["status"]) for p in shown["propagation"]}


def wait_live(env: Env, recorder: Recorder, catalog_id: str, version: int, clusters: int) -> None:
    def live() -> bool:
        shown = propagation(recorder, catalog_id)
        return len(shown) == clusters and set(shown.values()) == {(version, "live")}

    env.worker.wait_for(live, f"catalog {catalog_id} v{version} live on {clusters} clusters")


def database_dump() -> str:
    """Every row of every Lakeplane model, as JSON."""
    chunks = []
    for model in apps.get_models():
        if model._meta.app_label in {"contenttypes", "auth", "sessions", "admin"}:
            continue
        chunks.append(serializers.serialize("json", model.objects.all()))
    return "\n".join(chunks)


def test_metastore_catalogs_and_cache_with_the_real_agent(
    plane_env: Env,  # noqa: F811
    owner: Caller,
    settings: Any,
) -> None:
    env = plane_env
    settings.LAKEPLANE_LOCAL_AGENTS_DIR = str(env.worker.agents)
    recorder = Recorder(owner)
    plane: ComputePlane = create_ready_plane(env, owner)
    root = agentinstall.manifests_dir(plane.pk)
    account_id = plane.cloud_account.aws_account_id

    # --- the customer keeps a database password in their own Secrets Manager.
    secrets = admin_client(env.sandbox.endpoint_url, "secretsmanager", account_id)
    secret_arn = secrets.create_secret(Name="lakeplane/app-db", SecretString=PLANTED)["ARN"]

    # --- a managed metastore: an RDS instance in the emulator, metastore objects by the agent.
    data, op = accepted(
        recorder.call(
            "post", "metastores", {"name": "lake", "compute_plane": plane.pk, "kind": "managed"}
        )
    )
    finished(env, op)
    metastore = recorder.call("get", f"metastores/{data['id']}").json()
    assert metastore["status"] == "ready"
    assert metastore["endpoint"].startswith("thrift://lp-ms-")
    rds = admin_client(env.sandbox.endpoint_url, "rds", account_id)
    (instance,) = [
        i
        for i in rds.describe_db_instances()["DBInstances"]
        if data["id"].replace("_", "-") in i["DBInstanceIdentifier"]
    ]
    assert instance["Engine"] == "postgres"
    assert instance["PubliclyAccessible"] is False
    assert "MasterUserSecret" in instance  # the password is RDS's, in the customer's account
    metastore_objects = set(files(root, "Deployment") | files(root, "Service") | files(root, "Job"))
    assert any("lp-ms-" in name for name in metastore_objects)

    # --- an Alluxio cache on its own node group.
    data, op = accepted(
        recorder.call(
            "post",
            "caches",
            {
                "name": "hot",
                "compute_plane": plane.pk,
                "workers": 2,
                "medium": "ssd",
                "size_gb_per_worker": 100,
                "mounts": [{"path": "/lake", "uri": "s3://customer-lake/warehouse"}],
                "policies": [{"type": "preload", "path": "/lake/hot"}, {"type": "write_back"}],
            },
        )
    )
    cache_id = data["id"]
    finished(env, op)
    assert recorder.call("get", f"caches/{cache_id}").json()["status"] == "ready"
    cache_objects = {n for n in files(root, "StatefulSet") if "cache" in n}
    assert len(cache_objects) == 2  # master and workers

    # --- two catalogs: Hive on the managed metastore, PostgreSQL with its password by ARN.
    response = recorder.call(
        "post", "catalogs", {"name": "lake", "connector": "hive", "metastore": metastore["id"]}
    )
    assert response.status_code == 201, response.content
    hive_id = response.json()["id"]
    response = recorder.call(
        "post",
        "catalogs",
        {
            "name": "appdb",
            "connector": "postgresql",
            "properties": {
                "connection-url": "jdbc:postgresql://app-db.internal:5432/app",
                "connection-user": "reporting",
            },
            "secrets": {"connection-password": secret_arn},
        },
    )
    assert response.status_code == 201, response.content
    pg_id = response.json()["id"]

    # --- attached to a Trino cluster (reading through the cache) and a PrestoDB cluster.
    common = {"coordinator": {"instance_type": "m5.xlarge"}, "catalogs": [hive_id, pg_id]}
    trino = create_cluster(
        env,
        owner,
        plane,
        name="etl",
        engine="trino",
        workers={"instance_type": "m5.xlarge", "count": 2},
        cache=cache_id,
        **common,
    )
    presto = create_cluster(
        env,
        owner,
        plane,
        name="adhoc",
        engine="presto",
        workers={"instance_type": "m5.xlarge", "count": 2},
        **common,
    )
    for catalog_id in (hive_id, pg_id):
        wait_live(env, recorder, catalog_id, 1, clusters=2)
    shown = recorder.call("get", f"clusters/{trino.id}").json()
    assert shown["catalogs"] == [hive_id, pg_id]
    assert shown["cache"] == cache_id

    # --- PATCH the PostgreSQL catalog: both clusters show the new version live.
    trino_before = pod_templates(root, trino)
    presto_before = pod_templates(root, presto)
    response = recorder.call(
        "patch",
        f"catalogs/{pg_id}",
        {
            "properties": {
                "connection-url": "jdbc:postgresql://app-db-replica.internal:5432/app",
                "connection-user": "reporting",
            }
        },
    )
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    wait_live(env, recorder, pg_id, 2, clusters=2)
    # Trino: dynamic catalog management, no pod template changed.
    assert pod_templates(root, trino) == trino_before
    statements = (root / "_catalog-statements" / f"{trino.id}.sql").read_text()
    assert 'CREATE CATALOG "appdb"' in statements
    assert "app-db-replica.internal" in statements
    # PrestoDB: a rolling restart was rendered (new pod template, rolling update, drained).
    presto_after = pod_templates(root, presto)
    assert presto_after["worker"] != presto_before["worker"]
    workers = deployment(root, presto.id, "worker")
    assert workers["spec"]["strategy"]["type"] == "RollingUpdate"
    assert workers["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]

    # --- the planted secret value: only in the Secrets the agent wrote, nowhere else.
    holders = sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and PLANTED in path.read_text(errors="replace")
    )
    assert holders
    assert all(Path(h).name.startswith("secret-") for h in holders), holders
    for config_map in files(root, "ConfigMap").values():
        assert PLANTED not in json.dumps(config_map)
    assert PLANTED not in database_dump()
    assert not any(PLANTED.encode() in body for body in recorder.bodies)
    assert PLANTED not in env.worker.output()
    agent_log = agentinstall.agent_dir(plane.pk) / "agent.log"
    assert PLANTED not in agent_log.read_text(errors="replace")

    # --- the cache outlives the cluster that read through it.
    assert act(env, owner, trino, "stop") == "stopped"
    assert act(env, owner, trino, "delete") == "deleted"
    assert recorder.call("get", f"caches/{cache_id}").json()["status"] == "ready"
    assert {n for n in files(root, "StatefulSet") if "cache" in n} == cache_objects
    prefix = resource_prefix(trino.id)
    assert not any(prefix in n for n in files(root, "Deployment"))
