# ruff: noqa: F811  (the compute plane fixtures are imported from tests/clusters/conftest.py)
"""A managed metastore's life: its RDS database in the emulator, the desired state carrying it to
the agent, the agent's report through the real agent API, and deletion with a final snapshot.

The engine is driven delivery by delivery (see tests/clusters/conftest.py for why)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from computeplane_agent import contract
from controlplane.catalogs import services
from controlplane.catalogs.models import Metastore
from controlplane.catalogs.observed_metastores import on_status_reported
from controlplane.core.audit import Actor
from controlplane.sandbox.customers import admin_client
from tests.agentapi.conftest import DESIRED, STATUS, Agent, register
from tests.clusters.conftest import drive, ready_plane, verified_account  # noqa: F401

pytestmark = pytest.mark.django_db

RESOURCE_KEYS = {
    "db_instance_id",
    "db_subnet_group",
    "db_security_group_id",
    "db_host",
    "db_port",
    "db_name",
    "db_username",
    "master_secret_arn",
}


@dataclass
class MetastoreAgent:
    """Plays the agent: runs every metastore its desired state lists, and says so."""

    agent: Agent
    capture: Any
    schema_ready: bool = True

    def desired(self) -> dict[str, Any]:
        response = self.agent.client.get(DESIRED, {"wait": 0})
        assert response.status_code == 200, response.content
        return dict(response.json())

    def report(self) -> dict[str, Any]:
        doc = self.desired()
        now = timezone.now().isoformat()
        body = {
            "agent_id": self.agent.agent_id,
            "report_id": uuid.uuid4().hex,
            "applied_version": doc["version"],
            "sent_at": now,
            "metastores": [
                {
                    "id": m["id"],
                    "phase": "running" if self.schema_ready else "starting",
                    "replicas_ready": m.get("replicas", 2),
                    "schema_ready": self.schema_ready,
                    "observed_at": now,
                }
                for m in doc.get("metastores", [])
            ],
        }
        with self.capture(execute=True):
            response = self.agent.client.post(STATUS, body, format="json")
        assert response.status_code == 200, response.content
        return body


@pytest.fixture
def agent(ready_plane, django_capture_on_commit_callbacks) -> MetastoreAgent:
    return MetastoreAgent(register(ready_plane), django_capture_on_commit_callbacks)


def create(owner, plane, name: str = "warehouse") -> tuple[Metastore, str]:
    metastore, operation = services.create_metastore(
        actor=Actor(user=owner.user),
        organization=owner.org,
        request=services.MetastoreRequest(name=name, compute_plane=plane, kind="managed"),
    )
    assert operation is not None
    return metastore, operation.id


def rds(sandbox) -> Any:
    return admin_client(sandbox.endpoint_url, "rds", sandbox.account_id)


def test_a_managed_metastore_is_ready_once_its_database_exists_and_the_agent_runs_it(
    owner,
    sandbox,
    ready_plane,
    agent,
) -> None:
    metastore, op = create(owner, ready_plane)
    driven = drive(op, agent)
    assert driven.operation.status == "succeeded", driven.operation.error_message
    assert driven.waits >= 1  # it waited for the agent's report, not just for RDS
    metastore.refresh_from_db()
    assert metastore.status == "ready"
    assert (metastore.observed_phase, metastore.schema_ready) == ("running", True)

    resources = metastore.resources
    assert set(resources) >= RESOURCE_KEYS
    (db,) = rds(sandbox).describe_db_instances(DBInstanceIdentifier=resources["db_instance_id"])[
        "DBInstances"
    ]
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True
    tags = {t["Key"]: t["Value"] for t in db["TagList"]}
    assert tags["lakeplane:metastore"] == metastore.id
    assert tags["lakeplane:compute-plane"] == ready_plane.id
    assert resources["db_host"] == db["Endpoint"]["Address"]
    assert resources["master_secret_arn"] == db["MasterUserSecret"]["SecretArn"]

    # The agent learns where the database is and which secret holds its password, never the
    # password itself; neither does Lakeplane's database.
    (spec,) = agent.desired()["metastores"]
    assert spec["id"] == metastore.id
    assert spec["database"]["host"] == resources["db_host"]
    assert spec["database"]["password"]["arn"] == resources["master_secret_arn"]
    secret = admin_client(sandbox.endpoint_url, "secretsmanager", sandbox.account_id)
    password = json.loads(
        secret.get_secret_value(SecretId=resources["master_secret_arn"])["SecretString"]
    )["password"]
    assert password not in json.dumps(agent.desired())
    assert password not in json.dumps(resources)


def test_deleting_a_managed_metastore_keeps_a_final_snapshot_and_nothing_else(
    owner,
    sandbox,
    ready_plane,
    agent,
) -> None:
    metastore, op = create(owner, ready_plane)
    assert drive(op, agent).operation.status == "succeeded"
    metastore.refresh_from_db()
    instance = metastore.resources["db_instance_id"]

    _, delete_op = services.delete_metastore(actor=Actor(user=owner.user), metastore=metastore)
    assert delete_op is not None
    driven = drive(delete_op.id, agent)
    assert driven.operation.status == "succeeded", driven.operation.error_message
    metastore.refresh_from_db()
    assert metastore.status == "deleted"
    assert metastore.deleted_at is not None
    assert agent.desired().get("metastores", []) == []
    client = rds(sandbox)
    assert client.describe_db_instances()["DBInstances"] == []
    assert client.describe_db_subnet_groups()["DBSubnetGroups"] == []
    snapshots = [s["DBSnapshotIdentifier"] for s in client.describe_db_snapshots()["DBSnapshots"]]
    assert snapshots == [f"{instance}-final"]
    assert metastore.resources["db_final_snapshot"] == f"{instance}-final"


def test_a_missing_rds_permission_fails_the_metastore_with_the_action_named(
    owner,
    sandbox,
    ready_plane,
    agent,
) -> None:
    sandbox.control.add_fault("access_denied", action="CreateDBInstance")
    metastore, op = create(owner, ready_plane)
    driven = drive(op, agent)
    assert driven.operation.status == "failed"
    assert driven.operation.error_code == "permission_missing"
    assert "rds:CreateDBInstance" in driven.operation.error_message
    metastore.refresh_from_db()
    assert metastore.status == "failed"
    # What existed before the failure is recorded, so a retry or a delete finds it.
    assert metastore.resources["db_subnet_group"]


def test_a_report_without_metastores_costs_no_query(
    ready_plane,
    django_assert_num_queries,
) -> None:
    report = contract.StatusReport(
        agent_id="agt_" + "a" * 26,
        report_id=uuid.uuid4().hex,
        applied_version=3,
        sent_at=timezone.now(),
    )
    with django_assert_num_queries(0):
        on_status_reported(None, reports=[(ready_plane.id, report)])


def test_an_agent_cannot_report_another_planes_metastore(
    owner,
    ready_plane,
    agent,
) -> None:
    metastore, _ = create(owner, ready_plane)
    now = timezone.now()
    report = contract.StatusReport(
        agent_id="agt_" + "a" * 26,
        report_id=uuid.uuid4().hex,
        sent_at=now,
        metastores=[
            contract.MetastoreStatus(
                id=metastore.id,
                phase="running",
                replicas_ready=2,
                schema_ready=True,
                observed_at=now,
            )
        ],
    )
    on_status_reported(None, reports=[("cp_someoneelse", report)])
    metastore.refresh_from_db()
    assert (metastore.observed_phase, metastore.schema_ready) == ("", False)
    on_status_reported(None, reports=[(ready_plane.id, report)])
    metastore.refresh_from_db()
    assert (metastore.observed_phase, metastore.schema_ready) == ("running", True)
