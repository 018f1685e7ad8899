"""Contract documents for the agent's tests."""

from __future__ import annotations

from typing import Any

from computeplane_agent.contract import (
    CacheSpec,
    CatalogSpec,
    ClusterSpec,
    DesiredState,
    MetastoreSpec,
)

CLUSTER_ID = "cl_01hv0000000000000000000001"
PLANE_ID = "cp_01hv0000000000000000000000"
HIVE_CATALOG_ID = "cat_01hv0000000000000000000001"
PG_CATALOG_ID = "cat_01hv0000000000000000000002"


def catalog_specs() -> list[CatalogSpec]:
    return [
        CatalogSpec.model_validate(
            {
                "id": HIVE_CATALOG_ID,
                "name": "hive",
                "connector": "hive",
                "version": 1,
                "properties": {"storage-format": "PARQUET"},
                "metastore": {"kind": "thrift", "uris": "thrift://metastore:9083"},
            }
        ),
        CatalogSpec.model_validate(
            {
                "id": PG_CATALOG_ID,
                "name": "pg",
                "connector": "postgresql",
                "version": 1,
                "properties": {
                    "connection-url": "jdbc:postgresql://db:5432/app",
                    "connection-user": "app",
                },
                "secrets": {
                    "connection-password": {
                        "arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pg"
                    }
                },
            }
        ),
    ]


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
        "catalogs": [HIVE_CATALOG_ID, PG_CATALOG_ID],
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
        **{"catalogs": catalog_specs(), **extra},
    )


METASTORE_ID = "ms_01hv0000000000000000000001"
CACHE_ID = "cache_01hv0000000000000000000001"
DB_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds-db-pw"
PG_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pg"


def metastore_spec(**overrides: Any) -> MetastoreSpec:
    body: dict[str, Any] = {
        "id": METASTORE_ID,
        "name": "main",
        "version": "4.0.1",
        "database": {
            "host": "lp-ms-main.abc123.eu-west-1.rds.amazonaws.com",
            "name": "metastore",
            "username": "hive",
            "password": {"arn": DB_SECRET_ARN, "json_key": "password"},
        },
        "warehouse": "s3://lp-plane-bucket/warehouse",
        **overrides,
    }
    return MetastoreSpec.model_validate(body)


def cache_spec(**overrides: Any) -> CacheSpec:
    body: dict[str, Any] = {
        "id": CACHE_ID,
        "name": "hot",
        "version": "2.9.5",
        "node_group": "lp-cache-01hv0000000000000000000001",
        "worker_instance_type": "r6i.2xlarge",
        "workers": 3,
        "medium": "mem",
        "size_gb_per_worker": 32,
        "mounts": [
            {"path": "/lake", "uri": "s3://customer-lake/data"},
            {"path": "/onprem", "uri": "hdfs://namenode.corp:8020/warehouse"},
        ],
        "policies": {
            "preload": [{"path": "/lake/hot"}, {"path": "/lake/daily", "schedule": "0 3 * * *"}],
            "pin": ["/lake/dims"],
            "ttl": [{"path": "/lake/tmp", "seconds": 3600}],
            "write_back": True,
        },
        **overrides,
    }
    return CacheSpec.model_validate(body)
