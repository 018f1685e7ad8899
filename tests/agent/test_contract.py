"""The wire contract admits metadata only: bounded, named, typed fields and nothing free-form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from computeplane_agent import contract
from computeplane_agent.contract import (
    DOCUMENTS,
    AgentError,
    ClusterStatus,
    DesiredState,
    StatusReport,
    UsageReport,
)

# Strings allowed without maxLength, by JSON-schema format: their syntax bounds them.
BOUNDED_FORMATS = {"date-time"}


def _walk(schema: Any, path: str, problems: list[str]) -> None:
    """Check one JSON-schema node and recurse into the nodes that are themselves schemas."""
    if not isinstance(schema, dict):
        problems.append(f"{path}: not a schema")
        return
    if not {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"} & schema.keys():
        problems.append(f"{path}: untyped value")
    kind = schema.get("type")
    extra = schema.get("additionalProperties")
    if extra is True:
        problems.append(f"{path}: additionalProperties is true")
    if kind == "object":
        if "properties" in schema or "patternProperties" in schema:
            if extra is not False:
                problems.append(f"{path}: object does not close additionalProperties")
        elif not isinstance(extra, dict):
            problems.append(f"{path}: untyped object")
        is_mapping = "patternProperties" in schema or isinstance(extra, dict)
        if is_mapping and "maxProperties" not in schema:
            problems.append(f"{path}: mapping without maxProperties")
    bounded_by_value = {"enum", "const"} & schema.keys()
    if (
        kind == "string"
        and "maxLength" not in schema
        and not bounded_by_value
        and schema.get("format") not in BOUNDED_FORMATS
    ):
        problems.append(f"{path}: string without maxLength")
    if kind == "array" and "maxItems" not in schema:
        problems.append(f"{path}: array without maxItems")
    for group in ("properties", "patternProperties", "$defs"):
        for name, sub in schema.get(group, {}).items():
            _walk(sub, f"{path}/{group}/{name}", problems)
    for group in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(group, [])):
            _walk(sub, f"{path}/{group}[{index}]", problems)
    for key in ("items", "propertyNames"):
        if key in schema:
            if key == "propertyNames" and "maxLength" not in schema[key]:
                problems.append(f"{path}/propertyNames: unbounded keys")
            elif key == "items":
                _walk(schema[key], f"{path}/items", problems)
    if isinstance(extra, dict):
        _walk(extra, f"{path}/additionalProperties", problems)


@pytest.mark.parametrize("mode", ["validation", "serialization"])
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.__name__)
def test_schema_has_no_free_form_fields(document: type[contract.ContractModel], mode: Any) -> None:
    problems: list[str] = []
    _walk(document.model_json_schema(mode=mode), document.__name__, problems)
    assert problems == []


def test_the_walker_catches_free_form_fields() -> None:
    # The check above must be able to fail: a dict[str, Any], an unbounded string and list.
    from pydantic import BaseModel

    class Loose(BaseModel):
        payload: dict[str, Any]
        text: str
        items: list[int]

    problems: list[str] = []
    _walk(Loose.model_json_schema(), "Loose", problems)
    assert any("payload" in p for p in problems)
    assert any("text" in p and "maxLength" in p for p in problems)
    assert any("items" in p and "maxItems" in p for p in problems)
    assert any("close additionalProperties" in p for p in problems)


def test_every_top_level_document_is_versioned_frozen_and_closed() -> None:
    for document in DOCUMENTS:
        assert "schema_version" in document.model_fields
        assert document.model_config.get("frozen") is True
        assert document.model_config.get("extra") == "forbid"


def _desired(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "compute_plane_id": "cp_01hv0000000000000000000000",
        "version": 3,
        "vpc_cidr": "10.42.0.0/16",
        "clusters": [
            {
                "id": "cl_01hv0000000000000000000000",
                "name": "etl",
                "engine": "trino",
                "version": "472",
                "state": "running",
                "coordinator": {"instance_type": "m6i.xlarge"},
                "workers": {"instance_type": "r6i.2xlarge", "replicas": 3, "spot": True},
                "node_group": "lp-cl-01hv",
                "catalogs": ["cat_01hv0000000000000000000001"],
            }
        ],
        "catalogs": [
            {
                "id": "cat_01hv0000000000000000000001",
                "name": "hive",
                "connector": "hive",
                "version": 1,
                "properties": {"hive.metastore.uri": "thrift://metastore:9083"},
            }
        ],
    }
    body.update(overrides)
    return body


def test_desired_state_round_trips() -> None:
    state = DesiredState.model_validate(_desired())
    assert state.schema_version == contract.CONTRACT_VERSION
    assert DesiredState.model_validate_json(state.model_dump_json()) == state


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schema_version": "2020-01-01"}, "schema_version"),
        ({"unexpected": 1}, "unexpected"),
        ({"version": -1}, "version"),
        ({"vpc_cidr": "10.0.0.0/16; rm -rf"}, "vpc_cidr"),
        ({"metastores": [{"id": "ms_1", "name": "m"}]}, "metastores"),
        ({"caches": [{"id": "cache_1", "name": "c"}]}, "caches"),
        ({"catalogs": []}, "unknown catalogs"),
        ({"registry_mirror": "https://mirror.example.com"}, "registry_mirror"),
    ],
)
def test_desired_state_rejects_bad_documents(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        DesiredState.model_validate(_desired(**overrides))
    assert field in str(excinfo.value)


def test_catalog_secrets_must_be_arns_and_properties_are_bounded() -> None:
    catalog = dict(_desired()["catalogs"][0])
    catalog["secrets"] = {"pw": {"arn": "hunter2"}}
    with pytest.raises(ValidationError, match="secrets"):
        DesiredState.model_validate(_desired(catalogs=[catalog]))
    catalog["secrets"] = {"pw": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pg"}
    with pytest.raises(ValidationError, match="secrets"):
        DesiredState.model_validate(_desired(catalogs=[catalog]))
    catalog["secrets"] = {}
    catalog["properties"] = {"k": "v" * 5000}
    with pytest.raises(ValidationError, match="properties"):
        DesiredState.model_validate(_desired(catalogs=[catalog]))


def test_reports_bound_their_messages() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError, match="message"):
        AgentError(code="render_failed", message="x" * 5000)
    report = StatusReport(
        agent_id="agt_1",
        report_id="r-00000001",
        applied_version=3,
        sent_at=now,
        clusters=[
            ClusterStatus(
                id="cl_1",
                phase="running",
                coordinator_ready=True,
                workers_ready=2,
                workers_desired=2,
                observed_at=now,
            )
        ],
    )
    assert StatusReport.model_validate_json(report.model_dump_json()) == report
    with pytest.raises(ValidationError, match="period_end"):
        UsageReport(
            agent_id="agt_1",
            report_id="u-00000001",
            period_start=now,
            period_end=now.replace(year=now.year - 1),
        )


@pytest.mark.parametrize(
    ("sample", "valid"),
    [
        ({"cluster_id": "cl_a1"}, True),  # the first contract's sample
        ({"cluster_id": "cl_a1", "role": "worker"}, True),
        ({"cache_id": "cache_a1", "role": "cache"}, True),
        ({"metastore_id": "ms_a1", "role": "metastore"}, True),
        ({"role": "gateway"}, True),
        ({"cluster_id": "cl_a1", "role": "cache"}, False),
        ({"cache_id": "cache_a1"}, False),
        ({"cluster_id": "cl_a1", "cache_id": "cache_a1", "role": "worker"}, False),
        ({"cluster_id": "cl_a1", "role": "gateway"}, False),
        ({}, False),
    ],
)
def test_a_usage_sample_names_exactly_the_subject_its_role_runs_for(sample, valid):
    from pydantic import ValidationError

    from computeplane_agent.contract import UsageSample

    body = {"instance_type": "m6i.large", "nodes": 1, "seconds": 60, **sample}
    if valid:
        UsageSample.model_validate(body)
    else:
        with pytest.raises(ValidationError):
            UsageSample.model_validate(body)
