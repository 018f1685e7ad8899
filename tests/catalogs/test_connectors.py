"""The connector registry: validation messages users act on, and each engine's catalog file."""

from __future__ import annotations

import json

import pytest

from computeplane_agent import connectors
from computeplane_agent.connectors import (
    CONNECTORS,
    UnsupportedProperty,
    connector_schema,
    engine_properties,
    managed_metastore_uri,
    metastore_service_name,
    validate_catalog,
)
from computeplane_agent.contract import CatalogSpec, GlueMetastore, SecretRef, ThriftMetastore

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lakeplane/pg-AbCdEf"

# A catalog each connector accepts; tests/catalogs/test_catalog_api.py posts the same ones.
VALID: dict[str, tuple[dict[str, object], dict[str, str]]] = {
    "hive": (
        {"storage-format": "parquet", "max-split-size": "128MB", "s3.region": "eu-west-1"},
        {},
    ),
    "iceberg": ({"file-format": "PARQUET", "max-partitions-per-writer": 200}, {}),
    "delta_lake": ({"enable-non-concurrent-writes": True, "vacuum-min-retention": "1d"}, {}),
    "mysql": (
        {"connection-url": "jdbc:mysql://db.internal:3306", "connection-user": "presto"},
        {"connection-password": ARN},
    ),
    "postgresql": (
        {"connection-url": "jdbc:postgresql://db.internal:5432/app", "connection-user": "presto"},
        {"connection-password": ARN},
    ),
    "redshift": (
        {"connection-url": "jdbc:redshift://wh.internal:5439/dev", "connection-user": "presto"},
        {"connection-password": ARN},
    ),
    "tpch": ({"splits-per-node": 4, "column-naming": "STANDARD"}, {}),
    "tpcds": ({"splits-per-node": "8"}, {}),
}


def test_the_registry_covers_the_promised_connectors():
    assert set(VALID) <= set(CONNECTORS)
    assert {c["name"] for c in connector_schema()} >= set(VALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_each_connector_has_a_valid_example(name):
    properties, secrets = VALID[name]
    uses = CONNECTORS[name].uses_metastore
    assert validate_catalog(name, properties, secrets, has_metastore=uses) == {}


def test_schema_is_json_and_names_differ_per_engine():
    schema = {c["name"]: c for c in json.loads(json.dumps(connector_schema()))}
    assert schema["hive"]["engines"] == {"presto": "hive-hadoop2", "trino": "hive"}
    assert schema["delta_lake"]["engines"] == {"presto": "delta", "trino": "delta_lake"}
    password = next(
        p for p in schema["postgresql"]["properties"] if p["key"] == "connection-password"
    )
    assert password["credential"]
    assert password["required"]
    access = next(p for p in schema["hive"]["properties"] if p["key"] == "s3.aws-access-key")
    assert access["engines"] == {"presto": "hive.s3.aws-access-key", "trino": "s3.aws-access-key"}


def test_unknown_property_suggests_the_closest_key():
    errors = validate_catalog("hive", {"storage-fromat": "ORC"}, {})
    assert "Did you mean 'storage-format'?" in errors["properties.storage-fromat"][0]


def test_an_engine_property_name_points_to_the_neutral_key():
    errors = validate_catalog("hive", {"hive.storage-format": "ORC"}, {})
    assert errors["properties.hive.storage-format"] == [
        "'hive.storage-format' is the PrestoDB and Trino name; use 'storage-format'."
    ]
    errors = validate_catalog("mysql", {"metadata.cache-ttl": "1m"}, {})
    assert (
        "is the Trino name; use 'metadata-cache-ttl'" in errors["properties.metadata.cache-ttl"][0]
    )


def test_credentials_only_as_secret_arns():
    errors = validate_catalog(
        "postgresql",
        {
            "connection-url": "jdbc:postgresql://db:5432/x",
            "connection-user": "u",
            "connection-password": "hunter2",
        },
        {},
    )
    assert errors == {
        "properties.connection-password": [
            "'connection-password' is a credential; give it under secrets as a Secrets Manager ARN."
        ]
    }
    errors = validate_catalog(
        "postgresql",
        {"connection-url": "jdbc:postgresql://db:5432/x"},
        {"connection-password": "hunter2", "connection-user": ARN},
    )
    assert "Secrets Manager ARN" in errors["secrets.connection-password"][0]
    assert "not a credential" in errors["secrets.connection-user"][0]
    assert "properties.connection-user" not in errors  # misplaced, already reported
    # An ARN of another service is not a secret reference.
    errors = validate_catalog(
        "mysql",
        {"connection-url": "jdbc:mysql://db:3306", "connection-user": "u"},
        {"connection-password": "arn:aws:s3:::bucket/key"},
    )
    assert list(errors) == ["secrets.connection-password"]


def test_missing_required_and_wrong_types():
    errors = validate_catalog("mysql", {"connection-url": "jdbc:postgresql://x:1/y"}, {})
    assert errors["properties.connection-url"] == ["Must start with jdbc:mysql://."]
    assert "required" in errors["properties.connection-user"][0]
    assert "under secrets" in errors["secrets.connection-password"][0]
    errors = validate_catalog(
        "hive",
        {
            "max-partitions-per-writers": "many",
            "recursive-directories": "yes",
            "metastore-timeout": "10",
            "max-split-size": "1 gig",
            "storage-format": "XLSX",
        },
        {},
    )
    assert errors == {
        "properties.max-partitions-per-writers": ["Must be an integer."],
        "properties.recursive-directories": ["Must be true or false."],
        "properties.metastore-timeout": ["Must be a duration such as 30s, 10m or 1h."],
        "properties.max-split-size": ["Must be a data size such as 64MB or 1GB."],
        "properties.storage-format": [
            "Must be one of ORC, PARQUET, AVRO, RCBINARY, RCTEXT, SEQUENCEFILE, JSON, "
            "TEXTFILE, CSV."
        ],
    }


def test_metastore_properties_come_from_the_metastore():
    errors = validate_catalog(
        "hive", {"hive.metastore.uri": "thrift://x:9083"}, {}, has_metastore=False
    )
    assert "set 'metastore' instead" in errors["properties.hive.metastore.uri"][0]
    assert errors["metastore"] == ["The hive connector needs a metastore."]
    assert validate_catalog("tpch", {}, {}, has_metastore=True) == {
        "metastore": ["The tpch connector does not use a metastore."]
    }
    assert "Did you mean 'hive'?" in validate_catalog("hvie", {}, {})["connector"][0]


def _spec(connector: str, properties: dict[str, str], metastore=None, secrets=None) -> CatalogSpec:
    return CatalogSpec(
        id="cat_1",
        name="lake",
        connector=connector,
        version=3,
        properties=properties,
        secrets=secrets or {},
        metastore=metastore,
    )


def test_hive_on_both_engines_with_a_thrift_metastore():
    spec = _spec(
        "hive",
        {"storage-format": "PARQUET", "s3.path-style-access": "true"},
        ThriftMetastore(uris="thrift://hms.internal:9083"),
        {"s3.aws-secret-key": SecretRef(arn=ARN)},
    )
    assert engine_properties(spec, "presto") == {
        "connector.name": "hive-hadoop2",
        "hive.metastore.uri": "thrift://hms.internal:9083",
        "hive.storage-format": "PARQUET",
        "hive.s3.path-style-access": "true",
    }
    assert engine_properties(spec, "trino") == {
        "connector.name": "hive",
        "hive.metastore.uri": "thrift://hms.internal:9083",
        "fs.native-s3.enabled": "true",
        "hive.storage-format": "PARQUET",
        "s3.path-style-access": "true",
    }
    assert connectors.secret_property_names(spec, "presto") == {
        "s3.aws-secret-key": "hive.s3.aws-secret-key"
    }


def test_iceberg_catalog_type_differs_per_engine():
    glue = GlueMetastore(region="eu-west-1", catalog_id="123456789012")
    spec = _spec("iceberg", {}, glue)
    assert engine_properties(spec, "presto") == {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "hive",
        "hive.metastore": "glue",
        "hive.metastore.glue.region": "eu-west-1",
        "hive.metastore.glue.catalogid": "123456789012",
    }
    assert engine_properties(spec, "trino") == {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "glue",
        "hive.metastore.glue.region": "eu-west-1",
        "hive.metastore.glue.catalogid": "123456789012",
        "fs.native-s3.enabled": "true",
    }
    thrift = _spec("iceberg", {}, ThriftMetastore(uris="thrift://a:9083,thrift://b:9083"))
    assert engine_properties(thrift, "trino")["iceberg.catalog.type"] == "hive_metastore"


def test_delta_and_jdbc_names():
    delta = _spec("delta_lake", {}, GlueMetastore(region="us-east-1"))
    assert engine_properties(delta, "presto")["connector.name"] == "delta"
    assert engine_properties(delta, "trino") == {
        "connector.name": "delta_lake",
        "hive.metastore": "glue",
        "hive.metastore.glue.region": "us-east-1",
        "fs.native-s3.enabled": "true",
    }
    pg = _spec(
        "postgresql",
        {"connection-url": "jdbc:postgresql://db:5432/x", "metadata-cache-ttl": "1m"},
        secrets={"connection-password": SecretRef(arn=ARN)},
    )
    assert engine_properties(pg, "presto") == {
        "connector.name": "postgresql",
        "connection-url": "jdbc:postgresql://db:5432/x",
        "metadata-cache-ttl": "1m",
    }
    assert engine_properties(pg, "trino")["metadata.cache-ttl"] == "1m"


def test_a_property_the_engine_lacks_is_a_clear_error():
    spec = _spec("hive", {"allow-drop-table": "true"}, ThriftMetastore(uris="thrift://h:9083"))
    assert engine_properties(spec, "presto")["hive.allow-drop-table"] == "true"
    with pytest.raises(UnsupportedProperty, match="allow-drop-table cannot be set on Trino"):
        engine_properties(spec, "trino")


def test_managed_metastore_service_name():
    assert metastore_service_name("ms_ab12") == "lp-ms-ab12"
    assert managed_metastore_uri("ms_ab12") == ("thrift://lp-ms-ab12.lakeplane-workloads.svc:9083")
    ThriftMetastore(uris=managed_metastore_uri("ms_ab12"), metastore_id="ms_ab12")
