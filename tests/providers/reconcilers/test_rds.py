"""The metastore database reconciler against the emulator: a private, encrypted PostgreSQL whose
master password only RDS and Secrets Manager ever hold."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from controlplane.providers.aws.reconcilers.base import ReconcileError
from controlplane.providers.aws.reconcilers.rds import (
    METASTORE_KEY,
    STATE_KEYS,
    MetastoreDatabaseReconciler,
    MetastoreDatabaseSpec,
)
from controlplane.sandbox.pytest_plugin import Sandbox
from tests.providers.reconcilers.test_platform_reconcilers import (
    Account,
    RecordingContext,
    new_owner,
    run_until_done,
)


@pytest.fixture
def account(sandbox: Sandbox) -> Account:
    return Account(sandbox)


@pytest.fixture
def plane_ctx(account: Account) -> RecordingContext:
    """A compute plane's context with its VPC, private subnets and security groups."""
    network = account.network()
    ec2 = account.clients("ec2")
    nodes = ec2.create_security_group(
        GroupName=f"nodes-{secrets.token_hex(3)}", Description="nodes", VpcId=network["vpc_id"]
    )["GroupId"]
    return account.ctx(new_owner(), **network, node_security_group_id=nodes)


def new_reconciler() -> MetastoreDatabaseReconciler:
    return MetastoreDatabaseReconciler(MetastoreDatabaseSpec(f"ms_{secrets.token_hex(8)}"))


def instance_of(account: Account, r: MetastoreDatabaseReconciler) -> dict[str, Any]:
    rds = account.clients("rds")
    found: dict[str, Any] = rds.describe_db_instances(DBInstanceIdentifier=r.spec.identifier)[
        "DBInstances"
    ][0]
    return found


def test_ensure_creates_a_private_encrypted_database_and_records_only_the_secret_arn(
    account: Account, plane_ctx: RecordingContext
) -> None:
    r = new_reconciler()
    start = account.seq()
    run_until_done(lambda: r.ensure(plane_ctx))
    assert sorted(account.mutating_since(start)) == sorted(
        [
            "rds:CreateDBSubnetGroup",
            "ec2:CreateSecurityGroup",
            "ec2:AuthorizeSecurityGroupIngress",
            "rds:CreateDBInstance",
        ]
    )

    db = instance_of(account, r)
    assert db["Engine"] == "postgres"
    assert db["DBInstanceClass"] == "db.t4g.small"
    assert db["AllocatedStorage"] == 20
    assert db["StorageType"] == "gp3"
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] == 7
    assert db["DeletionProtection"] is False
    assert db["CopyTagsToSnapshot"] is True
    assert db["MasterUsername"] == "hive"
    assert db["DBName"] == "metastore"
    tags = {t["Key"]: t["Value"] for t in db["TagList"]}
    assert plane_ctx.owner.owns(tags)
    assert tags["lakeplane:org"] == plane_ctx.owner.org_id
    assert tags[METASTORE_KEY] == r.spec.metastore_id
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == r.spec.subnet_group_name
    subnets = {s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]}
    assert subnets == set(plane_ctx.state["private_subnet_ids"])
    groups = [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]]
    assert groups == [plane_ctx.state["db_security_group_id"]]

    # Only the compute plane's groups reach PostgreSQL, and only on 5432.
    group = account.clients("ec2").describe_security_groups(GroupIds=groups)["SecurityGroups"][0]
    assert plane_ctx.owner.owns(group["Tags"])
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]] == [
        ("tcp", 5432, 5432)
    ]
    assert not group["IpPermissions"][0]["IpRanges"]
    sources = {pair["GroupId"] for pair in group["IpPermissions"][0]["UserIdGroupPairs"]}
    assert sources == {
        plane_ctx.state["node_security_group_id"],
        plane_ctx.state["cluster_security_group_id"],
    }

    # Every key the metastore's desired state needs, recorded as it became known.
    state = plane_ctx.state
    assert set(STATE_KEYS) <= set(state)
    assert state["db_instance_id"] == r.spec.identifier
    assert state["db_host"] == db["Endpoint"]["Address"]
    assert state["db_port"] == 5432
    assert (state["db_name"], state["db_username"]) == ("metastore", "hive")
    assert state["master_secret_arn"] == db["MasterUserSecret"]["SecretArn"]
    recorded_keys = [key for key, _ in plane_ctx.recorded]
    assert recorded_keys.index("db_instance_id") < recorded_keys.index("db_host")

    # The password exists only in the customer's Secrets Manager, never in what Lakeplane holds.
    password = json.loads(
        account.clients("secretsmanager").get_secret_value(SecretId=state["master_secret_arn"])[
            "SecretString"
        ]
    )["password"]
    assert password
    assert password not in json.dumps(state)
    assert password not in json.dumps(plane_ctx.recorded)

    again = account.seq()
    run_until_done(lambda: r.ensure(account.ctx(plane_ctx.owner, **state)))
    assert account.mutating_since(again) == []
    assert {a.action for a in r.plan(plane_ctx)} == {"none"}


def test_delete_keeps_only_the_final_snapshot_and_a_second_delete_is_a_no_op(
    account: Account, plane_ctx: RecordingContext
) -> None:
    r = new_reconciler()
    run_until_done(lambda: r.ensure(plane_ctx))
    rds = account.clients("rds")
    ec2 = account.clients("ec2")
    group_id = plane_ctx.state["db_security_group_id"]

    summary = run_until_done(lambda: r.delete(plane_ctx), attempts=10)
    assert r.spec.final_snapshot in summary
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    left = ec2.describe_security_groups(
        Filters=[{"Name": "tag:lakeplane:metastore", "Values": [r.spec.metastore_id]}]
    )["SecurityGroups"]
    assert left == []
    assert group_id not in {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    snapshots = rds.describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == [r.spec.final_snapshot]
    snapshot_tags = {t["Key"]: t["Value"] for t in snapshots[0].get("TagList") or []}
    assert snapshot_tags[METASTORE_KEY] == r.spec.metastore_id
    assert plane_ctx.state["db_final_snapshot"] == r.spec.final_snapshot
    for key in ("db_instance_id", "db_host", "master_secret_arn", "db_security_group_id"):
        assert plane_ctx.state.get(key) is None

    start = account.seq()
    r.delete(plane_ctx)
    assert account.mutating_since(start) == []


def test_two_metastores_of_one_plane_never_touch_each_other(
    account: Account, plane_ctx: RecordingContext
) -> None:
    first, second = new_reconciler(), new_reconciler()
    first_ctx = account.ctx(plane_ctx.owner, **plane_ctx.state)
    second_ctx = account.ctx(plane_ctx.owner, **plane_ctx.state)
    run_until_done(lambda: first.ensure(first_ctx))
    run_until_done(lambda: second.ensure(second_ctx))
    assert first_ctx.state["db_security_group_id"] != second_ctx.state["db_security_group_id"]
    run_until_done(lambda: first.delete(first_ctx), attempts=10)
    assert instance_of(account, second)["DBInstanceStatus"] == "available"
    start = account.seq()
    second.ensure(account.ctx(plane_ctx.owner, **second_ctx.state))
    assert account.mutating_since(start) == []


def test_a_foreign_instance_with_the_same_name_is_never_adopted_or_deleted(
    account: Account, plane_ctx: RecordingContext
) -> None:
    r = new_reconciler()
    rds = account.clients("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=r.spec.identifier,
        Engine="postgres",
        DBInstanceClass="db.t4g.small",
        AllocatedStorage=20,
        MasterUsername="someone",
        MasterUserPassword="not-lakeplanes-1",
    )
    with pytest.raises(ReconcileError) as failure:
        run_until_done(lambda: r.ensure(plane_ctx))
    assert failure.value.code == "resource_conflict"
    assert r.spec.identifier in failure.value.message
    run_until_done(lambda: r.delete(plane_ctx), attempts=10)
    assert instance_of(account, r)["DBInstanceStatus"] == "available"


def test_a_missing_permission_or_quota_reads_in_the_customers_words(
    account: Account, plane_ctx: RecordingContext
) -> None:
    r = new_reconciler()
    account.sandbox.control.add_fault("access_denied", action="CreateDBInstance")
    with pytest.raises(ReconcileError) as denied:
        run_until_done(lambda: r.ensure(plane_ctx))
    assert denied.value.code == "permission_missing"
    assert "rds:CreateDBInstance" in denied.value.message
    assert "onboarding template" in denied.value.message


def test_without_the_compute_plane_network_nothing_is_created(account: Account) -> None:
    r = new_reconciler()
    ctx = account.ctx(new_owner())
    start = account.seq()
    with pytest.raises(ReconcileError) as failure:
        r.ensure(ctx)
    assert failure.value.code == "missing_prerequisite"
    assert account.mutating_since(start) == []
