"""Compute planes through the API, built and torn down in the emulator by the real workflow."""

from __future__ import annotations

import pytest

from controlplane.computeplanes.models import ComputePlane
from controlplane.core import workflows
from controlplane.core.audit import Actor
from controlplane.core.models import Operation
from controlplane.sandbox.customers import admin_client
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)

MANAGED = {"Name": "tag:lakeplane:managed-by", "Values": ["lakeplane"]}


def _body(account, **extra):
    return {
        "name": "analytics",
        "cloud_account": account.pk,
        "region": "us-east-1",
        "vpc_cidr": "10.42.0.0/16",
        "availability_zones": 2,
        "kubernetes_version": "1.31",
        **extra,
    }


def _url(owner, suffix=""):
    return f"/api/v1/orgs/{owner.org.slug}/compute-planes{suffix}"


def _matches(tags, filters) -> bool:
    values = {t["Key"]: t["Value"] for t in tags or []}
    return all(values.get(f["Name"].removeprefix("tag:")) in f["Values"] for f in filters)


def tagged_resources(sandbox, plane_id: str | None = None) -> dict[str, list[str]]:
    """Every Lakeplane-tagged resource in the customer account, by kind."""
    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    filters = [MANAGED]
    if plane_id:
        filters.append({"Name": "tag:lakeplane:compute-plane", "Values": [plane_id]})
    found = {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=filters)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=filters)["Subnets"]],
        "igws": [
            i["InternetGatewayId"]
            for i in ec2.describe_internet_gateways(Filters=filters)["InternetGateways"]
        ],
        # The emulator ignores tag filters on NAT gateways: match their tags here.
        "nats": [
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways()["NatGateways"]
            if n["State"] not in ("deleted", "deleting") and _matches(n.get("Tags"), filters)
        ],
        "eips": [a["AllocationId"] for a in ec2.describe_addresses(Filters=filters)["Addresses"]],
        "route_tables": [
            r["RouteTableId"] for r in ec2.describe_route_tables(Filters=filters)["RouteTables"]
        ],
        "security_groups": [
            g["GroupId"] for g in ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
        ],
    }
    iam = admin_client(sandbox.endpoint_url, "iam", sandbox.account_id)
    found["iam_roles"] = [
        r["RoleName"]
        for r in iam.list_roles(PathPrefix="/lakeplane/")["Roles"]
        if plane_id is None or plane_id.replace("_", "-") in r["RoleName"]
    ]
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    found["eks_clusters"] = [
        c
        for c in eks.list_clusters()["clusters"]
        if plane_id is None or plane_id.replace("_", "-") in c
    ]
    # Inside the clusters: node groups (the system one), the Pod Identity add-on and association.
    found["eks_node_groups"], found["eks_addons"], found["pod_identity_associations"] = [], [], []
    for name in eks.list_clusters()["clusters"]:
        for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
            tags = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
            if _matches([{"Key": k, "Value": v} for k, v in tags["tags"].items()], filters):
                found["eks_node_groups"].append(f"{name}/{group}")
        for addon in eks.list_addons(clusterName=name)["addons"]:
            tags = eks.describe_addon(clusterName=name, addonName=addon)["addon"]["tags"]
            if _matches([{"Key": k, "Value": v} for k, v in tags.items()], filters):
                found["eks_addons"].append(f"{name}/{addon}")
        for summary in eks.list_pod_identity_associations(clusterName=name)["associations"]:
            association = eks.describe_pod_identity_association(
                clusterName=name, associationId=summary["associationId"]
            )["association"]
            if _matches([{"Key": k, "Value": v} for k, v in association["tags"].items()], filters):
                found["pod_identity_associations"].append(f"{name}/{summary['associationId']}")
    s3 = admin_client(sandbox.endpoint_url, "s3", sandbox.account_id)
    found["buckets"] = [
        b["Name"]
        for b in s3.list_buckets()["Buckets"]
        if b["Name"].startswith("lakeplane-")
        and (plane_id is None or plane_id.replace("_", "-") in b["Name"])
    ]
    return found


def test_create_ready_then_delete_leaves_nothing(owner, verified_account, sandbox):
    response = owner.client.post(_url(owner), _body(verified_account), format="json")
    assert response.status_code == 202, response.content
    plane_id = response.json()["id"]
    op = owner.client.get(response["Location"]).json()
    assert op["status"] == "succeeded", op
    assert op["progress"] == 100
    assert [s["status"] for s in op["steps"]] == ["succeeded"] * len(op["steps"])

    plane = owner.client.get(_url(owner, f"/{plane_id}")).json()
    assert plane["status"] == "ready"
    assert plane["resources"]["vpc_id"].startswith("vpc-")
    assert len(plane["resources"]["subnet_ids"]) == 4
    assert plane["resources"]["eks_cluster_name"]
    assert set(plane["resources"]["buckets"]) == {"warehouse", "logs"}

    built = tagged_resources(sandbox, plane_id)
    assert len(built["vpcs"]) == 1
    assert len(built["subnets"]) == 4
    assert len(built["nats"]) == 2
    assert len(built["eks_clusters"]) == 1
    # Lakeplane's own pods' node group, and the agent's Pod Identity.
    assert [g.rsplit("/", 1)[1] for g in built["eks_node_groups"]] == ["lakeplane-system"]
    assert len(built["eks_addons"]) == len(built["pod_identity_associations"]) == 1
    recorded = ComputePlane.objects.get(pk=plane_id).resources
    assert [recorded["pod_identity_association_id"]] == [
        a.rsplit("/", 1)[1] for a in built["pod_identity_associations"]
    ]

    deleted = owner.client.delete(_url(owner, f"/{plane_id}"))
    assert deleted.status_code == 202, deleted.content
    op = owner.client.get(deleted["Location"]).json()
    assert op["status"] == "succeeded", op
    assert owner.client.get(_url(owner, f"/{plane_id}")).json()["status"] == "deleted"
    leftovers = {kind: ids for kind, ids in tagged_resources(sandbox, plane_id).items() if ids}
    assert leftovers == {}


def test_second_create_run_makes_no_mutating_call(owner, verified_account, sandbox):
    response = owner.client.post(_url(owner), _body(verified_account), format="json")
    plane = ComputePlane.objects.get(pk=response.json()["id"])
    assert plane.status == "ready"
    since = max((c.seq for c in sandbox.control.calls()), default=0)

    operation = workflows.start_operation(
        actor=Actor.system_actor("test"),
        organization=plane.organization,
        kind="computeplane.create",
        target=plane,
    )
    workflows.send_advance(operation.id)
    assert Operation.objects.get(pk=operation.pk).status == "succeeded"
    calls = [c for c in sandbox.control.calls(since=since) if c.service != "sts"]
    mutating = [f"{c.service}:{c.action}" for c in calls if c.mutating]
    assert calls, "the second run made no AWS call at all: it did not look"
    assert mutating == []


def test_dry_run_lists_actions_and_creates_nothing(owner, verified_account, sandbox):
    since = max((c.seq for c in sandbox.control.calls()), default=0)
    response = owner.client.post(
        _url(owner, "?dry_run=true"), _body(verified_account), format="json"
    )
    assert response.status_code == 200, response.content
    plan = response.json()["plan"]
    steps = [action["step"] for action in plan]
    assert steps.index("vpc") < steps.index("subnets") < steps.index("eks")
    assert all(a["action"] == "create" for a in plan if a["step"] == "vpc")
    assert ComputePlane.objects.count() == 0
    assert not [c for c in sandbox.control.calls(since=since) if c.mutating and c.service != "sts"]
    assert tagged_resources(sandbox)["vpcs"] == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"vpc_cidr": "8.8.0.0/16"}, "vpc_cidr"),
        ({"vpc_cidr": "10.0.0.0/8"}, "vpc_cidr"),
        ({"vpc_cidr": "nonsense"}, "vpc_cidr"),
        ({"kubernetes_version": "1.12"}, "kubernetes_version"),
        ({"availability_zones": 5}, "availability_zones"),
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "public_access_cidrs"),
        (
            {"endpoint_access": "public_and_private", "public_access_cidrs": ["0.0.0.0/0"]},
            "public_access_cidrs",
        ),
        ({"region": "moon-1"}, "region"),
    ],
)
def test_bad_requests_get_field_errors(owner, extra, field, db):
    account = CloudAccountFactory(organization=owner.org, status="verified")
    response = owner.client.post(_url(owner), _body(account, **extra), format="json")
    assert response.status_code in (400, 422), response.content
    assert field in response.json()["errors"]
    assert ComputePlane.objects.count() == 0


def test_unverified_account_is_refused(owner, db):
    account = CloudAccountFactory(organization=owner.org, status="pending_role")
    response = owner.client.post(_url(owner), _body(account), format="json")
    assert response.status_code == 422
    assert "cloud_account" in response.json()["errors"]


def test_another_orgs_cloud_account_is_404(owner, db):
    foreign = CloudAccountFactory(status="verified")
    response = owner.client.post(_url(owner), _body(foreign), format="json")
    assert response.status_code == 404
    assert "cloud_account" in response.json()["errors"]


def test_patch_public_cidrs_reconciles_only_eks(owner, verified_account, sandbox):
    created = owner.client.post(
        _url(owner),
        _body(
            verified_account,
            endpoint_access="public_and_private",
            public_access_cidrs=["203.0.113.0/24"],
        ),
        format="json",
    ).json()
    # A plane built before the system node group existed: an update brings it up to date.
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    cluster_name = ComputePlane.objects.get(pk=created["id"]).resources["eks_cluster_name"]
    eks.delete_nodegroup(clusterName=cluster_name, nodegroupName="lakeplane-system")
    response = owner.client.patch(
        _url(owner, f"/{created['id']}"),
        {"public_access_cidrs": ["198.51.100.0/24"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert "lakeplane-system" in eks.list_nodegroups(clusterName=cluster_name)["nodegroups"]
    op = owner.client.get(response["Location"]).json()
    assert op["status"] == "succeeded", op
    assert [s["name"] for s in op["steps"]] == [
        "iam",
        "eks",
        "system_nodes",
        "pod_identity",
        "buckets",
    ]
    eks = admin_client(sandbox.endpoint_url, "eks", sandbox.account_id)
    name = ComputePlane.objects.get(pk=created["id"]).resources["eks_cluster_name"]
    vpc_config = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert vpc_config["publicAccessCidrs"] == ["198.51.100.0/24"]
    renamed = owner.client.patch(_url(owner, f"/{created['id']}"), {"name": "bi"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "bi"


def test_single_nat_mode_builds_one_shared_nat(owner, verified_account, sandbox):
    response = owner.client.post(
        _url(owner), _body(verified_account, nat_mode="single"), format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["nat_mode"] == "single"
    plane_id = response.json()["id"]
    assert ComputePlane.objects.get(pk=plane_id).status == "ready"
    assert len(tagged_resources(sandbox, plane_id)["nats"]) == 1


@pytest.mark.parametrize(
    "kms_key_arn",
    [
        "not-an-arn",
        "arn:aws:kms:eu-west-1:{account}:key/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",  # region
        "arn:aws:kms:us-east-1:999999999999:key/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",  # account
    ],
)
def test_kms_key_must_be_in_the_planes_account_and_region(owner, kms_key_arn, db):
    account = CloudAccountFactory(organization=owner.org, status="verified")
    body = _body(account, kms_key_arn=kms_key_arn.format(account=account.aws_account_id))
    response = owner.client.post(_url(owner), body, format="json")
    assert response.status_code == 422, response.content
    assert "kms_key_arn" in response.json()["errors"]


def test_delete_is_409_while_clusters_exist(owner, db):
    from controlplane.clusters.models import Cluster
    from tests.factories import ClusterFactory, ComputePlaneFactory

    plane = ComputePlaneFactory(organization=owner.org, status="ready")
    cluster = ClusterFactory(organization=owner.org, compute_plane=plane, status="running")
    response = owner.client.delete(_url(owner, f"/{plane.pk}"))
    assert response.status_code == 409, response.content
    assert "1 clusters" in response.json()["detail"]
    assert ComputePlane.objects.get(pk=plane.pk).status == "ready"
    assert Operation.objects.filter(target_id=plane.pk).count() == 0

    # A deleted cluster no longer holds the plane.
    from controlplane.computeplanes.services import _dependents

    Cluster.objects.filter(pk=cluster.pk).update(status="deleted")
    assert _dependents(plane) == ""


def test_renaming_onto_a_taken_name_is_422_and_changes_nothing(owner):
    from tests.factories import ComputePlaneFactory

    ComputePlaneFactory(organization=owner.org, name="analytics", status="ready")
    plane = ComputePlaneFactory(organization=owner.org, name="bi", status="ready")
    response = owner.client.patch(_url(owner, f"/{plane.id}"), {"name": "analytics"}, format="json")
    assert response.status_code == 422, response.content
    assert "name" in response.json()["errors"]
    plane.refresh_from_db()
    assert plane.name == "bi"
    same = owner.client.patch(_url(owner, f"/{plane.id}"), {"name": "bi"}, format="json")
    assert same.status_code == 200
