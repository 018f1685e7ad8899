"""Drift detection end to end in the emulator: resources deleted behind Lakeplane's back are
found by one periodic check (read-only, a bounded number of calls), reported in plain words,
refused fast by operations, and rebuilt by one repair call after which the cluster runs."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.models import AuditEvent
from controlplane.providers.aws.drift import MAX_CALLS_PER_PLANE
from controlplane.sandbox.customers import admin_client
from tests.clusters.conftest import SimulatedAgent, drive
from tests.clusters.test_cluster_lifecycle import body, node_groups, sizes
from tests.drift.conftest import delete_vpc

pytestmark = pytest.mark.django_db


def clusters_url(owner, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/clusters{suffix}"


def plane_url(owner, plane, suffix: str = "") -> str:
    return f"/api/v1/orgs/{owner.org.slug}/compute-planes/{plane.id}{suffix}"


def run_ok(response, agent: SimulatedAgent | None) -> dict[str, Any]:
    assert response.status_code == 202, response.content
    data = response.json()
    driven = drive(data["operation"]["id"], agent)
    assert driven.operation.status == "succeeded", (
        driven.operation.error_code,
        driven.operation.error_message,
    )
    return data


@pytest.fixture
def running_cluster(owner, ready_plane, sim_agent) -> Cluster:
    data = run_ok(
        owner.client.post(clusters_url(owner), body(ready_plane), format="json"), sim_agent
    )
    return Cluster.objects.get(pk=data["id"])


def calls_since(sandbox, seq: int) -> list[Any]:
    return [c for c in sandbox.control.calls(account=sandbox.account_id) if c.seq > seq]


def last_seq(sandbox) -> int:
    calls = sandbox.control.calls()
    return calls[-1].seq if calls else 0


def assert_refused(response, *words: str) -> dict[str, Any]:
    assert response.status_code == 409, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    for word in words:
        assert word in problem["detail"], problem
    return problem


def test_a_clean_plane_stays_ready_with_read_only_bounded_calls(
    owner, sandbox, ready_plane, running_cluster, drift_checks
):
    before = last_seq(sandbox)
    dispatched = drift_checks()
    assert ready_plane.id in dispatched.planes
    assert ready_plane.cloud_account_id in dispatched.accounts

    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "ready"
    assert plane.findings == []
    assert plane.last_checked_at is not None
    calls = calls_since(sandbox, before)
    assert calls, "the checks made no AWS call at all"
    assert [c for c in calls if c.mutating] == []
    # The one refusal is the account check's AssumeRole WITHOUT the external ID.
    refused = [(c.service, c.action, c.outcome) for c in calls if c.outcome != "ok"]
    assert refused == [("sts", "AssumeRole", "access_denied")]
    shown = owner.client.get(plane_url(owner, plane)).json()
    assert shown["status"] == "ready"
    assert shown["findings"] == []
    assert shown["last_checked_at"] is not None

    # ``manage.py checkdrift`` runs the same checks at once.
    out = io.StringIO()
    before = last_seq(sandbox)
    call_command("checkdrift", stdout=out)
    assert f"{plane.id}: ok" in out.getvalue()
    assert f"{plane.cloud_account_id}: ok" in out.getvalue()
    assert [c for c in calls_since(sandbox, before) if c.mutating] == []


def test_plane_check_calls_stay_within_the_bound_whatever_the_cluster_count(
    owner, sandbox, ready_plane, sim_agent, drift_checks
):
    from controlplane.computeplanes import drift

    def inspected() -> int:
        plane = ComputePlane.objects.select_related("organization", "cloud_account").get(
            pk=ready_plane.pk
        )
        before = last_seq(sandbox)
        inspection = drift.inspect(plane)
        assert inspection.findings == []
        calls = calls_since(sandbox, before)
        assert [c for c in calls if c.mutating] == []
        assert len(calls) == inspection.aws_calls
        return len(calls)

    with_none = inspected()
    for name in ("one", "two", "three"):
        run_ok(
            owner.client.post(
                clusters_url(owner), {**body(ready_plane), "name": name}, format="json"
            ),
            sim_agent,
        )
    with_three = inspected()
    assert with_three == with_none == MAX_CALLS_PER_PLANE


def test_deleted_vpc_degrades_the_plane_and_repair_brings_it_back(
    owner, sandbox, ready_plane, running_cluster, sim_agent, drift_checks
):
    vpc_id = ready_plane.resources["vpc_id"]
    delete_vpc(sandbox, vpc_id)

    before = last_seq(sandbox)
    drift_checks()
    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "degraded"
    details = [f["detail"] for f in plane.findings]
    assert f"The VPC {vpc_id} no longer exists." in details
    assert {f["check"] for f in plane.findings} >= {"vpc", "subnets", "route_tables"}
    calls = calls_since(sandbox, before)
    assert [c for c in calls if c.mutating] == []
    event = AuditEvent.objects.get(action="computeplane.degraded", target_id=plane.id)
    assert f"The VPC {vpc_id} no longer exists." in json.dumps(event.data)
    shown = owner.client.get(plane_url(owner, plane)).json()
    assert shown["status"] == "degraded"
    assert {"check": "vpc", "detail": f"The VPC {vpc_id} no longer exists."} in shown["findings"]

    # Nothing starts deep inside a step on a degraded plane: 409, naming the reason.
    assert_refused(
        owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop")),
        "degraded",
        f"The VPC {vpc_id} no longer exists.",
        "repair",
    )
    assert_refused(
        owner.client.post(clusters_url(owner), {**body(plane), "name": "more"}, format="json"),
        "degraded",
    )
    # A second check finds the same: no second audit event.
    drift_checks()
    assert (
        AuditEvent.objects.filter(action="computeplane.degraded", target_id=plane.id).count() == 1
    )

    repaired = run_ok(owner.client.post(plane_url(owner, plane, "/repair")), sim_agent)
    assert repaired["status"] == "updating"
    plane.refresh_from_db()
    assert plane.status == "ready"
    assert plane.findings == []
    new_vpc = plane.resources["vpc_id"]
    assert new_vpc != vpc_id
    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    assert ec2.describe_vpcs(VpcIds=[new_vpc])["Vpcs"]
    drift_checks()
    plane.refresh_from_db()
    assert (plane.status, plane.findings) == ("ready", [])
    assert AuditEvent.objects.filter(action="computeplane.repair_requested").count() == 1

    # The cluster runs on the repaired plane: it stops and starts again.
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop")), sim_agent)
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/start")), sim_agent)
    assert Cluster.objects.get(pk=running_cluster.pk).status == "running"
    assert sizes(node_groups(sandbox, plane, running_cluster)) == {"coordinator": 1, "workers": 3}


def test_deleted_node_group_is_found_and_repair_recreates_it(
    owner, sandbox, ready_plane, running_cluster, sim_agent, drift_checks
):
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = f"{running_cluster.node_group}-workers"
    eks.delete_nodegroup(clusterName=ready_plane.resources["eks_cluster_name"], nodegroupName=name)

    drift_checks()
    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "degraded"
    assert plane.findings == [
        {
            "check": "node_groups",
            "detail": f"The node group {name} of cluster adhoc ({running_cluster.id}) no longer "
            f"exists in the EKS cluster {plane.resources['eks_cluster_name']}.",
        }
    ]

    run_ok(owner.client.post(plane_url(owner, plane, "/repair")), sim_agent)
    plane.refresh_from_db()
    assert (plane.status, plane.findings) == ("ready", [])
    assert sizes(node_groups(sandbox, plane, running_cluster)) == {"coordinator": 1, "workers": 3}
    run_ok(
        owner.client.post(
            clusters_url(owner, f"/{running_cluster.id}/resize"), {"workers": 4}, format="json"
        ),
        sim_agent,
    )
    assert sizes(node_groups(sandbox, plane, running_cluster))["workers"] == 4


def test_revoked_role_makes_the_account_unusable_until_a_check_passes(
    owner, sandbox, ready_plane, running_cluster, sim_agent, drift_checks
):
    account = CloudAccount.objects.get(pk=ready_plane.cloud_account_id)
    iam = admin_client(sandbox.endpoint_url, "iam", sandbox.account_id)
    role_name = account.role_arn.rsplit("/", 1)[-1]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    nobody = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(nobody))

    before = last_seq(sandbox)
    drift_checks()
    account.refresh_from_db()
    assert account.status == "unusable"
    assert [f["check"] for f in account.findings] == ["assume_role_with_external_id"]
    assert "could not assume" in account.findings[0]["detail"]
    assert AuditEvent.objects.filter(action="cloudaccount.unusable", target_id=account.id).exists()
    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "degraded"
    assert plane.findings[0]["check"] == "cloud_account"
    shown = owner.client.get(f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account.id}").json()
    assert shown["status"] == "unusable"
    assert shown["findings"] == account.findings

    # Nothing is attempted with it: operations are refused before any AWS call.
    since = last_seq(sandbox)
    assert_refused(
        owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop")),
        f"The cloud account {account.id} is unusable",
        "Verify the cloud account again",
    )
    assert_refused(owner.client.post(plane_url(owner, plane, "/repair")), "unusable")
    assert calls_since(sandbox, since) == []
    assert [c for c in calls_since(sandbox, before) if c.mutating] == []

    # The customer fixes the trust policy: the next check makes it usable and the plane ready.
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
    drift_checks()
    account.refresh_from_db()
    plane.refresh_from_db()
    assert (account.status, account.findings) == ("verified", [])
    assert (plane.status, plane.findings) == ("ready", [])
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop")), sim_agent)


def test_deleted_role_is_reported_in_words(owner, sandbox, ready_plane, drift_checks):
    """Only the role Lakeplane uses goes (e.g. the stack deleted): the check says so."""
    account = CloudAccount.objects.get(pk=ready_plane.cloud_account_id)
    iam = admin_client(sandbox.endpoint_url, "iam", sandbox.account_id)
    role_name = account.role_arn.rsplit("/", 1)[-1]
    for policy in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role_name, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role_name, PolicyName=policy)
    iam.delete_role(RoleName=role_name)

    drift_checks()
    account.refresh_from_db()
    assert account.status == "unusable"
    assert "Check that the role exists" in account.findings[0]["detail"]


def test_an_emulator_that_lost_everything_is_reported_and_rebuilt_by_repair(
    owner, sandbox, ready_plane, running_cluster, sim_agent, drift_checks
):
    """The sandbox restarted without its state (a snapshot that could not be restored): the
    customer re-creates the role and verifies it again; the next check lists what is gone and
    one repair rebuilds the whole plane (a new VPC and EKS cluster) with the cluster on it."""
    import requests

    from controlplane.sandbox.customers import create_customer_role

    requests.post(f"{sandbox.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
    account = CloudAccount.objects.get(pk=ready_plane.cloud_account_id)
    drift_checks()
    account.refresh_from_db()
    assert account.status == "unusable"

    role = create_customer_role(
        sandbox.endpoint_url,
        external_id=account.external_id,
        account_id=sandbox.account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    verify = owner.client.post(
        f"/api/v1/orgs/{owner.org.slug}/cloud-accounts/{account.id}/verify",
        {"role_arn": role.role_arn},
        format="json",
    )
    run_ok(verify, None)
    account.refresh_from_db()
    assert account.status == "verified"

    drift_checks()
    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "degraded"
    details = " ".join(f["detail"] for f in plane.findings)
    old_vpc, eks_name = plane.resources["vpc_id"], plane.resources["eks_cluster_name"]
    assert f"The VPC {old_vpc} no longer exists." in details
    assert f"The EKS cluster {eks_name} no longer exists." in details
    assert "The S3 bucket" in details

    run_ok(owner.client.post(plane_url(owner, plane, "/repair")), sim_agent)
    plane.refresh_from_db()
    assert (plane.status, plane.findings) == ("ready", [])
    assert plane.resources["vpc_id"] != old_vpc
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    assert eks.describe_cluster(name=eks_name)["cluster"]["status"] == "ACTIVE"
    assert sizes(node_groups(sandbox, plane, running_cluster)) == {"coordinator": 1, "workers": 3}
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop")), sim_agent)
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/start")), sim_agent)
    assert Cluster.objects.get(pk=running_cluster.pk).status == "running"


def delete_eks_cluster(sandbox, plane) -> None:
    """What a customer does in the EKS console: node groups first, then the cluster."""
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = plane.resources["eks_cluster_name"]
    for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
        eks.delete_nodegroup(clusterName=name, nodegroupName=group)
    eks.delete_cluster(name=name)


def test_a_cluster_that_failed_before_the_check_comes_back_after_repair(
    owner, sandbox, ready_plane, running_cluster, sim_agent, drift_checks
):
    """The EKS cluster is deleted and the user stops a cluster before the next check has run:
    the stop fails in AWS and the cluster is ``failed``. Repair rebuilds the plane and then
    finishes what the failed cluster was asked to do (it ends ``stopped``); it starts again."""
    delete_eks_cluster(sandbox, ready_plane)
    response = owner.client.post(clusters_url(owner, f"/{running_cluster.id}/stop"))
    assert response.status_code == 202, response.content
    failed = drive(response.json()["operation"]["id"], sim_agent)
    assert failed.operation.status == "failed"
    assert Cluster.objects.get(pk=running_cluster.pk).status == "failed"

    drift_checks()
    plane = ComputePlane.objects.get(pk=ready_plane.pk)
    assert plane.status == "degraded"
    assert any("no longer exists" in f["detail"] for f in plane.findings)

    run_ok(owner.client.post(plane_url(owner, plane, "/repair")), sim_agent)
    plane.refresh_from_db()
    assert (plane.status, plane.findings) == ("ready", [])
    cluster = Cluster.objects.get(pk=running_cluster.pk)
    assert cluster.status == "stopping"
    assert cluster.operation is not None
    assert cluster.operation.kind == "cluster.stop"
    retried = drive(cluster.operation_id, sim_agent)
    assert retried.operation.status == "succeeded", retried.operation.error_message
    assert Cluster.objects.get(pk=running_cluster.pk).status == "stopped"
    audit = AuditEvent.objects.filter(action="cluster.stop_requested", target_id=cluster.id)
    assert audit.count() == 2  # the user's stop, then the repair's retry

    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/start")), sim_agent)
    assert Cluster.objects.get(pk=running_cluster.pk).status == "running"
    assert sizes(node_groups(sandbox, plane, running_cluster)) == {"coordinator": 1, "workers": 3}


def test_a_failed_cluster_can_be_started_again(
    owner, sandbox, ready_plane, running_cluster, sim_agent
):
    """A failed cluster is not a dead end: ``start`` retries it on a healthy plane."""
    Cluster.objects.filter(pk=running_cluster.pk).update(status="failed")
    run_ok(owner.client.post(clusters_url(owner, f"/{running_cluster.id}/start")), sim_agent)
    assert Cluster.objects.get(pk=running_cluster.pk).status == "running"
    assert sizes(node_groups(sandbox, ready_plane, running_cluster)) == {
        "coordinator": 1,
        "workers": 3,
    }
