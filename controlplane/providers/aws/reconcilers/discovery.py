"""Find which compute planes own Lakeplane-tagged resources in an account (for the sweeper).

Read-only. Returns compute plane ids found in the ``lakeplane:compute-plane`` tag of every
kind the reconcilers create, limited to one organization's resources; and the managed
metastores whose RDS database pieces are still in the account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.base import (
    COMPUTE_PLANE_KEY,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    ORG_KEY,
)
from controlplane.providers.aws.reconcilers.rds import METASTORE_KEY


def _tags_of(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: t["Value"] for t in tags or []}


def _owner_of(tags: Any, org_id: str) -> str | None:
    tag_map = _tags_of(tags)
    if tag_map.get(MANAGED_BY_KEY) != MANAGED_BY_VALUE or tag_map.get(ORG_KEY) != org_id:
        return None
    return tag_map.get(COMPUTE_PLANE_KEY)


def owned_compute_planes(clients: Callable[[str], Any], org_id: str) -> set[str]:
    found: set[str] = set()
    ec2 = clients("ec2")
    filters = [
        {"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]},
        {"Name": f"tag:{ORG_KEY}", "Values": [org_id]},
    ]
    ec2_listings = (
        (ec2.describe_vpcs, "Vpcs"),
        (ec2.describe_subnets, "Subnets"),
        (ec2.describe_security_groups, "SecurityGroups"),
        (ec2.describe_addresses, "Addresses"),
        (ec2.describe_internet_gateways, "InternetGateways"),
        (ec2.describe_route_tables, "RouteTables"),
    )
    for describe, key in ec2_listings:
        for item in describe(Filters=filters)[key]:
            found.add(_owner_of(item.get("Tags"), org_id) or "")
    for nat in ec2.describe_nat_gateways(Filters=filters)["NatGateways"]:
        if nat.get("State") not in ("deleted",):
            found.add(_owner_of(nat.get("Tags"), org_id) or "")

    eks = clients("eks")
    for name in eks.list_clusters()["clusters"]:
        if name.startswith(NAME_PREFIX):
            cluster = eks.describe_cluster(name=name)["cluster"]
            found.add(_owner_of(cluster.get("tags", {}), org_id) or "")

    iam = clients("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix="/lakeplane/"):
        for role in page["Roles"]:
            tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
            found.add(_owner_of(tags, org_id) or "")

    s3 = clients("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        if not bucket["Name"].startswith(NAME_PREFIX):
            continue
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
        except ClientError:
            continue  # untagged or gone: not provably ours
        found.add(_owner_of(tags, org_id) or "")
    found.discard("")
    return found


def owned_metastore_databases(clients: Callable[[str], Any], org_id: str) -> dict[str, str]:
    """Metastore id → compute plane id of every managed metastore database piece in the account.

    Read-only: DB instances (their tags come with the describe), DB subnet groups (tags by ARN)
    and security groups carrying the metastore tag. Any one piece left is enough: the RDS
    reconciler's delete removes whichever remain.
    """
    found: dict[str, str] = {}

    def note(tags: Any) -> None:
        plane = _owner_of(tags, org_id)
        tag_map = _tags_of(tags)
        metastore = tag_map.get(METASTORE_KEY)
        if plane and metastore:
            found[metastore] = plane

    rds = clients("rds")
    for page in rds.get_paginator("describe_db_instances").paginate():
        for instance in page["DBInstances"]:
            if str(instance.get("DBInstanceIdentifier", "")).startswith(NAME_PREFIX):
                note(instance.get("TagList"))
    for page in rds.get_paginator("describe_db_subnet_groups").paginate():
        for group in page["DBSubnetGroups"]:
            if not str(group.get("DBSubnetGroupName", "")).startswith(NAME_PREFIX):
                continue
            try:
                tags = rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])
            except ClientError:
                continue  # gone meanwhile
            note(tags["TagList"])

    ec2 = clients("ec2")
    filters = [
        {"Name": f"tag:{MANAGED_BY_KEY}", "Values": [MANAGED_BY_VALUE]},
        {"Name": f"tag:{ORG_KEY}", "Values": [org_id]},
        {"Name": "tag-key", "Values": [METASTORE_KEY]},
    ]
    for page in ec2.get_paginator("describe_security_groups").paginate(Filters=filters):
        for group in page["SecurityGroups"]:
            note(group.get("Tags"))
    return found
