"""Presto/Trino manifests: schema-valid for every supported Kubernetes version, and sized, pinned
and wired the way the product promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from computeplane_agent.instance_types import UnknownInstanceType, instance_type
from computeplane_agent.render import render_cluster, render_desired_state
from computeplane_agent.versions import UnsupportedVersion
from tests.agent.factories import CLUSTER_ID, cluster_spec, desired_state

# Lakeplane's supported EKS versions (controlplane.computeplanes.services).
KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32")
SIZES = [
    ("m6i.xlarge", "r6i.2xlarge", 3),
    ("m7i.2xlarge", "r7i.8xlarge", 20),
    ("c6i.large", "c6i.large", 1),
    ("r6i.4xlarge", "i4i.16xlarge", 100),
]


def _by_kind(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    matches = [
        o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(matches) == 1, (kind, name_suffix, [o["metadata"]["name"] for o in matches])
    return matches[0]


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.mark.parametrize("engine", ["presto", "trino"])
@pytest.mark.parametrize(("coordinator", "workers", "replicas"), SIZES)
@pytest.mark.parametrize("spot", [False, True])
def test_every_manifest_passes_strict_validation(
    engine: str, coordinator: str, workers: str, replicas: int, spot: bool
) -> None:
    spec = cluster_spec(
        engine=engine,
        version="0.292" if engine == "presto" else "476",
        coordinator={"instance_type": coordinator},
        workers={"instance_type": workers, "replicas": replicas, "spot": spot},
    )
    objects = render_cluster(
        spec, vpc_cidr="10.42.0.0/16", registry_mirror="mirror.example.com/hub"
    )
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ConfigMap"] * 3
        + ["Service", "Deployment", "Deployment", "PodDisruptionBudget"]
        + ["NetworkPolicy"] * 2
    )
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    deployment = _by_kind(
        render_cluster(cluster_spec(), vpc_cidr="10.0.0.0/16"), "Deployment", "-worker"
    )
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # typo: not a field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.31", strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.31", strict=True)


def test_the_cli_accepts_rendered_files_and_rejects_a_broken_one(tmp_path: Path) -> None:
    objects = render_desired_state(desired_state())
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(objects))
    cli = [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.32"]
    assert subprocess.run([*cli, str(good)], capture_output=True, check=False).returncode == 0
    bad_object = yaml.safe_load(yaml.safe_dump(objects[3]))
    bad_object["spec"]["ports"][0]["prot"] = 80
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bad_object))
    result = subprocess.run([*cli, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "prot" in result.stdout + result.stderr


def test_memory_follows_the_instance_type_table() -> None:
    objects = render_cluster(
        cluster_spec(workers={"instance_type": "r6i.4xlarge", "replicas": 4, "max_replicas": 10}),
        vpc_cidr="10.42.0.0/16",
    )
    worker_files = _by_kind(objects, "ConfigMap", "-worker-config")["data"]
    coordinator_files = _by_kind(objects, "ConfigMap", "-coordinator-config")["data"]
    node_mib = instance_type("r6i.4xlarge").memory_mib  # 128 GiB
    heap_mib = int(worker_files["jvm.config"].split("-Xmx")[1].split("M")[0])
    assert 0.6 * node_mib < heap_mib < 0.8 * node_mib
    per_node = int(_properties(worker_files["config.properties"])["query.max-memory-per-node"][:-2])
    assert per_node < heap_mib
    coordinator = _properties(coordinator_files["config.properties"])
    # Cluster-wide memory is sized for the autoscaling ceiling (10 workers), not today's 4.
    assert coordinator["query.max-memory"] == f"{per_node * 10}MB"
    worker = _by_kind(objects, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0]
    limit_mib = int(worker["resources"]["limits"]["memory"][:-2])
    assert heap_mib < limit_mib < node_mib


def test_unknown_instance_type_and_unsupported_version_are_errors() -> None:
    with pytest.raises(UnknownInstanceType):
        render_cluster(cluster_spec(workers={"instance_type": "x9.huge"}), vpc_cidr="10.0.0.0/16")
    with pytest.raises(UnsupportedVersion):
        render_cluster(cluster_spec(version="1"), vpc_cidr="10.0.0.0/16")


def test_engine_differences() -> None:
    presto = render_cluster(cluster_spec(engine="presto", version="0.292"), vpc_cidr="10.0.0.0/16")
    trino = render_cluster(cluster_spec(), vpc_cidr="10.0.0.0/16")
    presto_cfg = _properties(
        _by_kind(presto, "ConfigMap", "-coordinator-config")["data"]["config.properties"]
    )
    trino_cfg = _properties(
        _by_kind(trino, "ConfigMap", "-coordinator-config")["data"]["config.properties"]
    )
    assert presto_cfg["discovery-server.enabled"] == "true"
    assert "discovery-server.enabled" not in trino_cfg
    assert "query.max-total-memory" in presto_cfg
    assert "query.max-total-memory" not in trino_cfg
    presto_pod = _by_kind(presto, "Deployment", "-worker")["spec"]["template"]["spec"]
    trino_pod = _by_kind(trino, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert presto_pod["containers"][0]["image"] == "docker.io/prestodb/presto:0.292"
    assert trino_pod["containers"][0]["image"] == "docker.io/trinodb/trino:476"
    assert presto_pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/opt/presto-server/etc"
    assert trino_pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/etc/trino"
    presto_stop = presto_pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1]
    trino_stop = trino_pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1]
    assert "X-Presto-User" in presto_stop
    assert "X-Trino-User" in trino_stop
    assert '"SHUTTING_DOWN"' in trino_stop
    assert "/v1/info/state" in trino_stop
    assert _properties(
        _by_kind(presto, "ConfigMap", "-worker-config")["data"]["log.properties"]
    ) == {"com.facebook.presto": "INFO"}


def test_pods_are_pinned_to_their_node_group_and_workers_shut_down_gracefully() -> None:
    spec = cluster_spec(workers={"spot": True}, max_query_minutes=90)
    objects = render_cluster(spec, vpc_cidr="10.42.0.0/16")
    worker = _by_kind(objects, "Deployment", "-worker")["spec"]["template"]["spec"]
    coordinator = _by_kind(objects, "Deployment", "-coordinator")["spec"]["template"]["spec"]
    assert worker["nodeSelector"] == {
        "lakeplane.io/node-group": spec.node_group,
        "node.kubernetes.io/instance-type": "r6i.2xlarge",
        "eks.amazonaws.com/capacityType": "SPOT",
    }
    assert coordinator["nodeSelector"]["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    for pod in (worker, coordinator):
        assert pod["tolerations"] == [
            {
                "key": "lakeplane.io/node-group",
                "operator": "Equal",
                "value": spec.node_group,
                "effect": "NoSchedule",
            }
        ]
    assert worker["terminationGracePeriodSeconds"] > 90 * 60


def test_network_policy_opens_only_the_coordinator_port_to_the_vpc() -> None:
    objects = render_cluster(cluster_spec(), vpc_cidr="10.42.0.0/16")
    policy = _by_kind(objects, "NetworkPolicy", "-coordinator")["spec"]
    assert policy["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": "10.42.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    worker_policy = _by_kind(objects, "NetworkPolicy", "-worker")["spec"]
    assert worker_policy["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"lakeplane.io/cluster": CLUSTER_ID}}}
    ]


def test_every_object_carries_our_labels_and_secrets_stay_references() -> None:
    objects = render_desired_state(desired_state())
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "lakeplane-agent"
        assert labels["lakeplane.io/cluster"] == CLUSTER_ID
        assert obj["metadata"]["namespace"] == "lakeplane-workloads"
    catalog = _by_kind(objects, "ConfigMap", "-catalog")["data"]
    assert _properties(catalog["pg.properties"])["connection-password"] == (
        "${ENV:CATALOG_PG_CONNECTION_PASSWORD}"
    )
    assert "arn:aws" not in yaml.safe_dump_all(objects)


def test_stop_resize_restart_touch_only_what_they_must() -> None:
    # With the autoscaling ceiling given (the control plane always sends max_count), a resize
    # changes the worker Deployment only and never rolls the coordinator.
    base = render_cluster(cluster_spec(workers={"max_replicas": 10}), vpc_cidr="10.42.0.0/16")
    resized = render_cluster(
        cluster_spec(workers={"replicas": 5, "max_replicas": 10}), vpc_cidr="10.42.0.0/16"
    )
    changed = [a["metadata"]["name"] for a, b in zip(base, resized, strict=True) if a != b]
    assert changed == [f"lp-{CLUSTER_ID.replace('_', '-')}-worker"]
    assert _by_kind(resized, "Deployment", "-worker")["spec"]["replicas"] == 5
    stopped = render_cluster(
        cluster_spec(state="stopped", workers={"max_replicas": 10}), vpc_cidr="10.42.0.0/16"
    )
    assert [d["spec"]["replicas"] for d in stopped if d["kind"] == "Deployment"] == [0, 0]
    assert len(stopped) == len(base)  # configuration is kept while stopped
    restarted = render_cluster(
        cluster_spec(restart_generation=1, workers={"max_replicas": 10}), vpc_cidr="10.42.0.0/16"
    )
    for a, b in zip(base, restarted, strict=True):
        if a["kind"] == "Deployment":
            annotations = b["spec"]["template"]["metadata"]["annotations"]
            assert annotations["lakeplane.io/restart-generation"] == "1"
        else:
            assert a == b
