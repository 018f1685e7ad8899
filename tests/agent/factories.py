"""Contract documents for the agent's tests."""

from __future__ import annotations

from typing import Any

from computeplane_agent.contract import ClusterSpec, DesiredState

CLUSTER_ID = "cl_01hv0000000000000000000001"
PLANE_ID = "cp_01hv0000000000000000000000"


def cluster_spec(**overrides: Any) -> ClusterSpec:
    body: dict[str, Any] = {
        "id": CLUSTER_ID,
        "name": "etl",
        "engine": "trino",
        "version": "476",
        "state": "running",
        "coordinator": {"instance_type": "m6i.xlarge"},
        "workers": {
            "instance_type": "r6i.2xlarge",
            "replicas": 3,
            "spot": False,
            "max_replicas": 10,
        },
        "node_group": "lp-cl-01hv0000000000000000000001",
        "catalogs": [
            {
                "name": "hive",
                "connector": "hive",
                "properties": {"hive.metastore.uri": "thrift://metastore:9083"},
            },
            {
                "name": "pg",
                "connector": "postgresql",
                "properties": {"connection-url": "jdbc:postgresql://db:5432/app"},
                "secrets": {
                    "connection-password": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pg"
                },
            },
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return ClusterSpec.model_validate(body)


def desired_state(
    version: int = 1, clusters: list[ClusterSpec] | None = None, **extra: Any
) -> DesiredState:
    return DesiredState(
        compute_plane_id=PLANE_ID,
        version=version,
        vpc_cidr="10.42.0.0/16",
        clusters=[cluster_spec()] if clusters is None else clusters,
        **extra,
    )
