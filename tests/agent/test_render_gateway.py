"""The gateway's manifests: strict-valid, wired to the clusters; a routing change rolls no pod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from computeplane_agent.agent import Agent
from computeplane_agent.client import HttpControlPlaneClient
from computeplane_agent.contract import WORKLOAD_NAMESPACE, DesiredState, GatewaySpec
from computeplane_agent.gateway.config import load_config
from computeplane_agent.gateway.routing import RequestFacts, route
from computeplane_agent.render import GatewayEnvironment, render_desired_state
from computeplane_agent.render.gateway import (
    KEY_SECRET,
    coordinator_url,
    gateway_key_secret,
)
from computeplane_agent.targets.base import ObjectRef
from computeplane_agent.targets.directory import DirectoryTarget
from tests.agent.factories import cluster_spec, desired_state
from tests.agent.test_agent_loop import FakeControlPlane
from tests.agent.test_render import KUBERNETES_VERSIONS

ETL = "cl_01hv00000000000000000000e1"
ADHOC = "cl_01hv00000000000000000000a1"
OLD = "cl_01hv00000000000000000000d1"
ENV = GatewayEnvironment(image="registry.example.com/lakeplane/agent:1.2.3",
                         agent_url="http://agent.example:8091")  # fmt: skip


def gateway(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enabled": True,
        "replicas": 2,
        "routing_groups": [
            {"name": "etl", "clusters": [ETL], "fallback": "adhoc"},
            {"name": "adhoc", "clusters": [ADHOC, OLD]},
        ],
        "rules": [
            {
                "name": "airflow",
                "priority": 1,
                "group": "etl",
                "match": {"source": "airflow-.*", "client_tags": ["nightly"]},
            },
            {
                "name": "finance",
                "priority": 2,
                "group": "adhoc",
                "match": {"schema_name": "finance", "headers": {"X-Team": "fin.*"}},
            },
        ],
        "default_group": "adhoc",
        "health": {"interval_seconds": 3, "fail_threshold": 4, "success_threshold": 2},
    }
    body.update(over)
    return body


def state(**over: Any) -> DesiredState:
    clusters = [
        cluster_spec(id=ETL, name="etl", node_group="lp-etl", draining=True),
        cluster_spec(id=ADHOC, name="adhoc", node_group="lp-adhoc", state="stopped"),
        cluster_spec(id=OLD, name="old", node_group="lp-old", engine="presto", version="0.292"),
    ]
    return desired_state(clusters=clusters, gateway=GatewaySpec.model_validate(gateway(**over)))


def gateway_objects(desired: DesiredState) -> list[dict[str, Any]]:
    return [
        o
        for o in render_desired_state(desired, gateway=ENV)
        if o["metadata"]["name"].startswith("lakeplane-gateway")
    ]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def document(objects: list[dict[str, Any]]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(by_kind(objects, "ConfigMap")["data"]["gateway.json"])
    return loaded


def test_every_gateway_object_passes_strict_validation() -> None:
    objects = [*gateway_objects(state()), gateway_key_secret(b"k" * 32)]
    assert sorted(o["kind"] for o in objects) == sorted(
        ["ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy", "Secret"]
    )
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_two_replicas_behind_an_internal_load_balancer_with_the_shared_key() -> None:
    objects = gateway_objects(state())
    deployment = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == ENV.image
    assert container["args"][:1] == ["gateway"]
    (key,) = container["env"]
    assert key["valueFrom"]["secretKeyRef"]["name"] == KEY_SECRET
    # Mounted as a directory: the kubelet swaps the file in place and the gateway reloads it.
    assert "subPath" not in container["volumeMounts"][0]
    service = by_kind(objects, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    policy = by_kind(objects, "NetworkPolicy")
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"ipBlock": {"cidr": "10.42.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert by_kind(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert "k" * 32 not in json.dumps(objects)  # the key is never in a rendered object


def test_the_config_file_loads_in_the_gateway_and_routes_as_the_rules_say() -> None:
    doc = document(gateway_objects(state()))
    config = load_config(json.dumps(doc))
    assert doc["agent_url"] == ENV.agent_url
    assert config.health.fail_threshold == 4
    clusters = config.clusters()
    assert clusters[ETL].state == "draining"
    assert clusters[ADHOC].state == "stopped"
    assert clusters[OLD].engine == "presto"
    assert clusters[OLD].url == coordinator_url(OLD)
    assert "lp-cl-01hv00000000000000000000d1-coordinator" in clusters[OLD].url
    nightly = RequestFacts(source="airflow-prod", client_tags=("nightly",))
    # etl's only cluster drains: the rule's group falls back to adhoc, where old runs.
    decision = route(config, nightly)
    assert (decision.group, decision.cluster_id) == ("adhoc", OLD)
    assert "Rule 'airflow' (priority 1) matched" in decision.reasons[0]
    assert "falling back to group 'adhoc'" in " ".join(decision.reasons)
    fin = RequestFacts(schema="finance", headers={"x-team": "fin-ops"})
    assert route(config, fin).reasons[1].startswith("Rule 'finance' (priority 2) matched")


def test_a_routing_change_rewrites_the_config_only() -> None:
    before = gateway_objects(state())
    after = gateway_objects(state(default_group="etl", rules=[]))
    changed = [a["kind"] for a, b in zip(before, after, strict=True) if a != b]
    assert changed == ["ConfigMap"]
    assert document(before)["version"] != document(after)["version"]
    assert document(gateway_objects(state()))["version"] == document(before)["version"]


def test_a_group_whose_clusters_are_gone_is_left_out_with_what_names_it() -> None:
    desired = state()
    only_old = desired.model_copy(update={"clusters": [desired.clusters[2]]})
    doc = document(gateway_objects(only_old))
    assert [g["name"] for g in doc["groups"]] == ["adhoc"]
    assert [r["name"] for r in doc["rules"]] == ["finance"]
    assert [c["id"] for c in doc["groups"][0]["clusters"]] == [OLD]
    load_config(json.dumps(doc))  # still a file the replicas take


@pytest.mark.parametrize("spec", [None, "disabled"])
def test_no_gateway_renders_nothing(spec: str | None) -> None:
    desired = state()
    gw = None if spec is None else desired.gateway.model_copy(update={"enabled": False})  # type: ignore[union-attr]
    assert gateway_objects(desired.model_copy(update={"gateway": gw})) == []


def test_the_agent_applies_meters_and_keys_the_gateway_and_a_rule_change_writes_one_file(
    tmp_path: Path,
) -> None:
    plane = FakeControlPlane()
    target = DirectoryTarget(tmp_path)
    client = HttpControlPlaneClient(f"http://127.0.0.1:{plane.port}", credential="c" * 20)
    agent = Agent(client, target, agent_id="agt_1", poll_seconds=0, usage_seconds=0, gateway=ENV,
                  gateway_key=b"derived-key-0123456789abcdef")  # fmt: skip
    try:
        plane.publish(state())
        agent.run_once()
        deployment = ObjectRef("apps/v1", "Deployment", WORKLOAD_NAMESPACE, "lakeplane-gateway")
        assert target.readiness(deployment).ready  # strict-valid, 2 replicas
        assert target.readiness(deployment).ready_replicas == 2
        key = yaml.safe_load(target.path_of(ObjectRef("v1", "Secret", WORKLOAD_NAMESPACE,
                                                      KEY_SECRET)).read_text())  # fmt: skip
        assert key["stringData"] == {"key": "derived-key-0123456789abcdef"}
        # Its ready replicas are metered, on the system nodes, naming no cluster.
        [usage] = plane.reports["usage"]
        gateway_samples = [s for s in usage["samples"] if s["role"] == "gateway"]
        assert [(s["nodes"], s.get("cluster_id")) for s in gateway_samples] == [(2, None)]
        files = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*.yaml")}
        plane.publish(state(rules=[]).model_copy(update={"version": 2}))
        agent.run_once()
        rewritten = [p.name for p, t in files.items() if p.stat().st_mtime_ns != t]
        assert rewritten == ["configmap-lakeplane-gateway-config.yaml"]
    finally:
        plane.close()
