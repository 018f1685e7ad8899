"""The sweeper removes what a vanished compute plane left behind, and nothing else."""

from __future__ import annotations

import secrets

import pytest
from django.utils import timezone

from controlplane.computeplanes import sweeper
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.workflows import context_for
from controlplane.core.models import AuditEvent
from controlplane.providers.aws.reconcilers.base import WaitFor
from controlplane.providers.aws.reconcilers.rds import (
    METASTORE_KEY,
    MetastoreDatabaseReconciler,
    MetastoreDatabaseSpec,
)
from controlplane.sandbox.customers import admin_client
from tests.computeplanes.test_compute_planes import _body, _url, tagged_resources
from tests.factories import MetastoreFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_sweeper_removes_orphans_and_spares_live_planes(owner, verified_account, sandbox):
    orphan = owner.client.post(_url(owner), _body(verified_account), format="json").json()
    keeper = owner.client.post(
        _url(owner),
        _body(verified_account, name="keeper", vpc_cidr="10.43.0.0/16"),
        format="json",
    ).json()
    assert ComputePlane.objects.get(pk=orphan["id"]).status == "ready"
    assert ComputePlane.objects.get(pk=keeper["id"]).status == "ready"
    kept_before = tagged_resources(sandbox, keeper["id"])

    # The owner vanishes without a teardown (say, its row was deleted by hand).
    ComputePlane.objects.filter(pk=orphan["id"]).delete()
    assert tagged_resources(sandbox, orphan["id"])["vpcs"]

    # Deletes that must wait for AWS (a NAT gateway deleting) finish on a later run.
    reports = [sweeper.sweep()]
    while reports[-1].pending and len(reports) < 5:
        reports.append(sweeper.sweep())

    assert not reports[-1].pending, reports
    assert orphan["id"] in reports[0].removed, reports
    assert all(keeper["id"] not in r.removed for r in reports)
    leftovers = {k: v for k, v in tagged_resources(sandbox, orphan["id"]).items() if v}
    assert leftovers == {}
    assert tagged_resources(sandbox, keeper["id"]) == kept_before
    events = AuditEvent.objects.filter(action="sweeper.removed_orphans")
    assert {e.target_id for e in events} == {orphan["id"]}
    assert {e.organization_id for e in events} == {owner.org.pk}

    # Nothing left to do: a second sweep removes nothing.
    assert sweeper.sweep().removed == {}


def _sweep_until_settled(limit: int = 5) -> list[sweeper.SweepReport]:
    """Deletes that must wait for AWS (a NAT gateway, a DB instance deleting) finish later."""
    reports = [sweeper.sweep()]
    while reports[-1].pending and len(reports) < limit:
        reports.append(sweeper.sweep())
    assert not reports[-1].pending, reports
    return reports


def _metastore_database(plane: ComputePlane, *, row: str = "ready") -> str:
    """A managed metastore's database in the plane's VPC, made by the real RDS reconciler.

    ``row``: "ready" (a live metastore), "deleted" (its row soft-deleted) or "missing"."""
    metastore_id = f"ms_{secrets.token_hex(8)}"
    if row != "missing":
        MetastoreFactory(
            id=metastore_id,
            organization=plane.organization,
            compute_plane=plane,
            kind="managed",
            uri="",
            status=row,
            deleted_at=timezone.now() if row == "deleted" else None,
        )
    ctx = context_for(plane)
    ctx.record = None  # the database's ids are the metastore's, not the plane's
    reconciler = MetastoreDatabaseReconciler(MetastoreDatabaseSpec(metastore_id=metastore_id))
    for _ in range(10):
        try:
            reconciler.ensure(ctx)
            break
        except WaitFor:
            continue
    return metastore_id


def metastore_pieces(sandbox, metastore_id: str) -> dict[str, list[str]]:
    """The metastore's DB instances, DB subnet groups, security groups and snapshots, by tag."""
    rds = admin_client(sandbox.endpoint_url, "rds", sandbox.account_id)

    def tagged(arn: str) -> bool:
        tags = rds.list_tags_for_resource(ResourceName=arn)["TagList"]
        return {"Key": METASTORE_KEY, "Value": metastore_id} in tags

    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    groups = ec2.describe_security_groups(
        Filters=[{"Name": f"tag:{METASTORE_KEY}", "Values": [metastore_id]}]
    )["SecurityGroups"]
    return {
        "instances": [
            i["DBInstanceIdentifier"]
            for i in rds.describe_db_instances()["DBInstances"]
            if tagged(i["DBInstanceArn"])
        ],
        "subnet_groups": [
            g["DBSubnetGroupName"]
            for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]
            if tagged(g["DBSubnetGroupArn"])
        ],
        "security_groups": [g["GroupId"] for g in groups],
        "snapshots": [
            s["DBSnapshotIdentifier"]
            for s in rds.describe_db_snapshots()["DBSnapshots"]
            if tagged(s["DBSnapshotArn"])
        ],
    }


def test_sweeper_deletes_a_vanished_planes_metastore_databases_before_its_network(
    owner, verified_account, sandbox
):
    created = owner.client.post(_url(owner), _body(verified_account), format="json").json()
    plane = ComputePlane.objects.get(pk=created["id"])
    assert plane.status == "ready"
    # Its metastore's row still says ready: the plane being gone is what counts.
    metastore_id = _metastore_database(plane)
    before = metastore_pieces(sandbox, metastore_id)
    assert all(before[k] for k in ("instances", "subnet_groups", "security_groups")), before

    ComputePlane.objects.filter(pk=plane.pk).update(status="deleted", deleted_at=timezone.now())
    reports = _sweep_until_settled()

    after = metastore_pieces(sandbox, metastore_id)
    assert (after["instances"], after["subnet_groups"], after["security_groups"]) == ([], [], [])
    # The database's final snapshot is kept, as a metastore's own deletion keeps it.
    assert after["snapshots"] == [f"{before['instances'][0]}-final"]
    leftovers = {k: v for k, v in tagged_resources(sandbox, plane.pk).items() if v}
    assert leftovers == {}
    # The audit log says what went, the database before the network it sat in.
    removed = [step for r in reports for step in r.removed.get(plane.pk, [])]
    assert removed[0].startswith(f"metastore_database {metastore_id}: "), removed
    assert "final snapshot" in removed[0]
    events = AuditEvent.objects.filter(action="sweeper.removed_orphans", target_id=plane.pk)
    logged = [step for e in events for step in e.data["removed"]]
    assert logged == removed
    assert sweeper.sweep().removed == {}


def test_sweeper_deletes_databases_of_deleted_metastores_on_a_live_plane_only(
    owner, verified_account, sandbox
):
    created = owner.client.post(_url(owner), _body(verified_account), format="json").json()
    plane = ComputePlane.objects.get(pk=created["id"])
    live = _metastore_database(plane)
    deleted = _metastore_database(plane, row="deleted")
    missing = _metastore_database(plane, row="missing")
    plane_before = tagged_resources(sandbox, plane.pk)
    live_before = metastore_pieces(sandbox, live)
    # The databases' security groups carry the plane's tag too; only the swept ones go.
    swept_groups = {
        g for m in (deleted, missing) for g in metastore_pieces(sandbox, m)["security_groups"]
    }
    assert len(swept_groups) == 2
    plane_after = {
        **plane_before,
        "security_groups": [g for g in plane_before["security_groups"] if g not in swept_groups],
    }
    assert all(metastore_pieces(sandbox, m)["instances"] for m in (live, deleted, missing))

    reports = _sweep_until_settled()

    for gone in (deleted, missing):
        pieces = metastore_pieces(sandbox, gone)
        assert (pieces["instances"], pieces["subnet_groups"], pieces["security_groups"]) == (
            [],
            [],
            [],
        ), gone
        assert any(gone in r.removed for r in reports), reports
    # The live metastore's database and the plane itself are untouched.
    assert metastore_pieces(sandbox, live) == live_before
    rds = admin_client(sandbox.endpoint_url, "rds", sandbox.account_id)
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=live_before["instances"][0])[
        "DBInstances"
    ]
    assert instance["DBInstanceStatus"] == "available"
    assert tagged_resources(sandbox, plane.pk) == plane_after
    assert all(plane.pk not in r.removed and live not in r.removed for r in reports)
    events = AuditEvent.objects.filter(action="sweeper.removed_orphans")
    assert {(e.target_type, e.target_id) for e in events} == {
        ("metastore", deleted),
        ("metastore", missing),
    }
    assert {e.data["compute_plane"] for e in events} == {plane.pk}
    assert sweeper.sweep().removed == {}
