"""The catalog and metastore parts of a compute plane's desired state, and per-cluster live
versions from the agent's status reports (through the real agent API)."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from computeplane_agent import contract
from controlplane.catalogs import services
from controlplane.catalogs.desired import catalog_specs, metastore_specs, plane_catalogs
from controlplane.catalogs.models import CatalogAttachment
from controlplane.catalogs.observed import on_status_reported
from tests.agentapi.conftest import STATUS, register
from tests.factories import CatalogFactory, MetastoreFactory

pytestmark = pytest.mark.django_db
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1-AbCdEf"
DATABASE = {
    "db_host": "lp-ms.abc.us-east-1.rds.amazonaws.com",
    "db_port": 5432,
    "db_name": "metastore",
    "db_username": "hive",
    "master_secret_arn": ARN,
}


def _setup(org, plane, clusters, n_clusters: int, n_catalogs: int):
    managed = MetastoreFactory(
        organization=org,
        compute_plane=plane,
        kind="managed",
        uri="",
        resources=DATABASE,
        version="4.0.1",
        status="ready",
    )
    glue = MetastoreFactory(
        organization=org, compute_plane=plane, kind="glue", uri="", glue={"region": "eu-west-1"}
    )
    catalogs = [
        CatalogFactory(organization=org, connector="hive", metastore=managed, properties={}),
        CatalogFactory(organization=org, connector="iceberg", metastore=glue, properties={}),
        CatalogFactory(
            organization=org,
            connector="postgresql",
            properties={"connection-url": "jdbc:postgresql://db:5432/x", "connection-user": "u"},
            secrets={"connection-password": ARN},
        ),
    ]
    catalogs += [CatalogFactory(organization=org) for _ in range(n_catalogs)]
    for cluster in clusters(n_clusters):
        services.set_cluster_catalogs(cluster, catalogs)
    return managed, catalogs


def test_specs_resolve_metastores_and_secrets(org, plane, clusters):
    managed, catalogs = _setup(org, plane, clusters, 2, 0)
    (ms,) = metastore_specs(plane)
    assert ms.id == managed.id
    assert ms.database.host == DATABASE["db_host"]
    assert ms.database.password == contract.SecretRef(arn=ARN, json_key="password")
    assert ms.warehouse == f"s3://lp-wh-1/warehouse/{managed.id}"
    specs = {s.connector: s for s in catalog_specs(plane)}
    assert specs["hive"].metastore == contract.ThriftMetastore(
        uris=f"thrift://lp-{managed.id.replace('_', '-')}.lakeplane-workloads.svc:9083",
        metastore_id=managed.id,
    )
    assert specs["iceberg"].metastore == contract.GlueMetastore(region="eu-west-1")
    assert specs["postgresql"].secrets == {"connection-password": contract.SecretRef(arn=ARN)}
    _, mounted = plane_catalogs(plane)
    assert all(sorted(ids) == sorted(c.id for c in catalogs) for ids in mounted.values())
    assert [s.id for s in catalog_specs(plane, [catalogs[2].id])] == [catalogs[2].id]


def test_a_catalog_waits_for_its_managed_metastore(org, plane, clusters):
    managed, catalogs = _setup(org, plane, clusters, 1, 0)
    managed.resources = {}
    managed.status = "provisioning"
    managed.save()
    assert metastore_specs(plane) == []
    specs, mounted = plane_catalogs(plane)
    assert catalogs[0].id not in {s.id for s in specs}
    assert all(catalogs[0].id not in ids for ids in mounted.values())


def test_specs_take_constant_queries(org, plane, clusters):
    counts = []
    for n in (1, 8):
        _setup(org, plane, clusters, n, n)
        with CaptureQueriesContext(connection) as captured:
            plane_catalogs(plane)
            metastore_specs(plane)
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 2


def _report(agent, statuses):
    now = timezone.now().isoformat()
    return {
        "agent_id": agent.agent_id,
        "report_id": uuid.uuid4().hex,
        "applied_version": 1,
        "sent_at": now,
        "clusters": [
            {
                "id": cluster_id,
                "phase": "running",
                "coordinator_ready": True,
                "workers_ready": 2,
                "workers_desired": 2,
                "observed_at": now,
                "catalogs": catalogs,
            }
            for cluster_id, catalogs in statuses.items()
        ],
    }


def test_propagation_comes_from_status_reports(
    org, plane, clusters, member, django_capture_on_commit_callbacks
):
    catalog = CatalogFactory(organization=org)
    c1, c2 = clusters(2)
    for c in (c1, c2):
        services.set_cluster_catalogs(c, [catalog])
    agent = register(plane)
    report = _report(
        agent,
        {
            c1.id: [{"id": catalog.id, "version": 1, "status": "live"}],
            c2.id: [{"id": catalog.id, "version": 0, "status": "failed", "message": "no secret"}],
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert agent.client.post(STATUS, report, format="json").status_code == 200
    data = member.client.get(f"/api/v1/orgs/{org.slug}/catalogs/{catalog.id}").json()
    by_cluster = {p["cluster"]: p for p in data["propagation"]}
    assert (by_cluster[c1.id]["version"], by_cluster[c1.id]["status"]) == (1, "live")
    assert by_cluster[c2.id]["status"] == "failed"
    assert by_cluster[c2.id]["message"] == "no secret"
    # After a change the old live version shows as pending until the agent catches up.
    member.client.patch(
        f"/api/v1/orgs/{org.slug}/catalogs/{catalog.id}",
        {"properties": {"splits-per-node": 9}},
        format="json",
    )
    data = member.client.get(f"/api/v1/orgs/{org.slug}/catalogs/{catalog.id}").json()
    assert {p["status"] for p in data["propagation"]} == {"pending"}


def test_a_report_for_another_planes_cluster_changes_nothing(org, plane, clusters):
    from tests.factories import ComputePlaneFactory

    catalog = CatalogFactory(organization=org)
    (cluster,) = clusters(1)
    services.set_cluster_catalogs(cluster, [catalog])
    report = contract.StatusReport.model_validate(
        _report(register(plane), {cluster.id: [{"id": catalog.id, "version": 1, "status": "live"}]})
    )
    on_status_reported(None, reports=[(ComputePlaneFactory().id, report)])
    assert CatalogAttachment.objects.get().status == "pending"
    on_status_reported(None, reports=[(plane.id, report)])
    assert CatalogAttachment.objects.get().status == "live"


def test_a_report_without_catalog_statuses_costs_no_query(plane, clusters):
    (cluster,) = clusters(1)
    report = contract.StatusReport.model_validate(_report(register(plane), {cluster.id: []}))
    with CaptureQueriesContext(connection) as captured:
        on_status_reported(None, reports=[(plane.id, report)])
    assert len(captured) == 0
