"""Read-only drift checks: does the cloud still hold what a compute plane's reconcilers built?

:func:`inspect_compute_plane` assumes the customer's role once with the external ID (a fresh
AssumeRole, not a cached session: that the role is still assumable is the first thing checked),
then looks up every resource the plane recorded with one listing call per kind, filtered by the
recorded ids, so the number of AWS calls per plane does not grow with its size:

======  ======================================================================  =====
 STS    AssumeRole                                                               1
 EC2    DescribeVpcs, DescribeSubnets, DescribeInternetGateways,                 6
        DescribeNatGateways, DescribeRouteTables, DescribeSecurityGroups
 IAM    GetRole x3 (cluster, node, agent), GetInstanceProfile                    4
 EKS    DescribeCluster, ListNodegroups (one page holds 100 node groups)        2
 S3     ListBuckets, GetBucketTagging x2 (warehouse, logs)                      3
======  ======================================================================  =====

That is :data:`MAX_CALLS_PER_PLANE` (16) for a plane with up to 100 node groups (~49 clusters),
one more per further 100; botocore's retries of a throttled call add attempts on top. Every call
is a Describe/List/Get (nothing is changed), and each finding is a sentence the customer can act
on. AWS being unreachable or throttling is :class:`AwsUnavailable` — no verdict, check later —
never a finding. No Django here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.providers.aws.credentials import (
    AwsAccessDenied,
    AwsClients,
    AwsUnavailable,
    classify,
)
from controlplane.providers.aws.reconcilers.base import (
    COMPUTE_PLANE_KEY,
    MANAGED_BY_KEY,
    Ownership,
    error_code,
)

MAX_CALLS_PER_PLANE: Final = 16
# A short-lived session: one check takes seconds.
DRIFT_SESSION_SECONDS: Final = 900
NODE_GROUPS_PER_PAGE: Final = 100

CHECK_ROLE: Final = "role"
CHECK_PERMISSIONS: Final = "permissions"
_MISSING_NAT_STATES = {"deleting", "deleted", "failed"}
_IAM_ROLES = (
    ("cluster_role_arn", "the EKS cluster role"),
    ("node_role_arn", "the node role"),
    ("agent_role_arn", "the agent's role"),
)


@dataclass(frozen=True)
class Finding:
    """One thing that no longer matches, as the API shows it: ``{check, detail}``."""

    check: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "detail": self.detail}


@dataclass(frozen=True)
class ExpectedNodeGroup:
    """A node group that must exist in the plane's EKS cluster, and whose it is (for the words)."""

    name: str
    owner: str  # e.g. "cluster adhoc (cl_…)"


@dataclass
class Inspection:
    findings: list[Finding] = field(default_factory=list)
    # HTTP attempts made, retries included (what AWS bills and throttles on).
    aws_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def attach(self, client: Any) -> Any:
        # before-send fires once per HTTP attempt, so retries are counted too.
        client.meta.events.register("before-send", self._on_send)
        return client

    def _on_send(self, **_: Any) -> None:
        self.count += 1


class _Denied(Exception):
    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


def _call(action: str, fn: Callable[..., Any], *, tolerate: Iterable[str] = (), **kw: Any) -> Any:
    """One read; ``tolerate`` codes come back as None (e.g. NotFound), AccessDenied as
    :class:`_Denied`, anything else (throttling, 5xx, network) as :class:`AwsUnavailable`."""
    try:
        return fn(**kw)
    except ClientError as exc:
        if error_code(exc) in set(tolerate):
            return None
        error = classify(action, exc)
        if isinstance(error, AwsAccessDenied):
            raise _Denied(action) from None
        raise error from None
    except BotoCoreError as exc:
        raise classify(action, exc) from None


def _tags(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {t["Key"]: t["Value"] for t in raw or []}


def _lost_tags(owner: Ownership, tags: Any, noun: str) -> Finding | None:
    tag_map = _tags(tags)
    if owner.owns(tag_map):
        return None
    return Finding(
        "tags",
        f"{noun} no longer carries Lakeplane's tags ({MANAGED_BY_KEY}=lakeplane, "
        f"{COMPUTE_PLANE_KEY}={owner.compute_plane_id}); Lakeplane finds and deletes only "
        "what carries them. Put the tags back.",
    )


@dataclass(frozen=True)
class _Ec2Kind:
    check: str
    noun: str  # "The VPC"
    operation: str  # boto3 method name
    action: str  # IAM action, for the words
    result_key: str
    id_key: str
    filter_name: str
    state_keys: tuple[str, ...]


_EC2_KINDS = (
    _Ec2Kind("vpc", "VPC", "describe_vpcs", "ec2:DescribeVpcs", "Vpcs", "VpcId", "vpc-id",
             ("vpc_id",)),
    _Ec2Kind("subnets", "subnet", "describe_subnets", "ec2:DescribeSubnets", "Subnets",
             "SubnetId", "subnet-id", ("public_subnet_ids", "private_subnet_ids")),
    _Ec2Kind("internet_gateway", "internet gateway", "describe_internet_gateways",
             "ec2:DescribeInternetGateways", "InternetGateways", "InternetGatewayId",
             "internet-gateway-id", ("internet_gateway_id",)),
    _Ec2Kind("nat_gateways", "NAT gateway", "describe_nat_gateways",
             "ec2:DescribeNatGateways", "NatGateways", "NatGatewayId", "nat-gateway-id",
             ("nat_gateway_ids",)),
    _Ec2Kind("route_tables", "route table", "describe_route_tables",
             "ec2:DescribeRouteTables", "RouteTables", "RouteTableId", "route-table-id",
             ("public_route_table_id", "private_route_table_ids")),
    _Ec2Kind("security_groups", "security group", "describe_security_groups",
             "ec2:DescribeSecurityGroups", "SecurityGroups", "GroupId", "group-id",
             ("cluster_security_group_id", "node_security_group_id")),
)  # fmt: skip


def _recorded(state: dict[str, Any], keys: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for key in keys:
        value = state.get(key)
        for item in value if isinstance(value, list) else [value]:
            if item and str(item) not in ids:
                ids.append(str(item))
    return ids


def _check_ec2(ec2: Any, owner: Ownership, state: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for kind in _EC2_KINDS:
        ids = _recorded(state, kind.state_keys)
        if not ids:
            continue
        # A filter on ids (not the Ids parameter): a missing id is an empty answer, not an error.
        answer = _call(
            kind.action,
            getattr(ec2, kind.operation),
            Filters=[{"Name": kind.filter_name, "Values": ids}],
        )
        found = {item[kind.id_key]: item for item in answer.get(kind.result_key, [])}
        for resource_id in ids:
            item = found.get(resource_id)
            if item is None or str(item.get("State", "")).lower() in _MISSING_NAT_STATES:
                findings.append(
                    Finding(kind.check, f"The {kind.noun} {resource_id} no longer exists.")
                )
                continue
            lost = _lost_tags(owner, item.get("Tags"), f"The {kind.noun} {resource_id}")
            if lost is not None:
                findings.append(lost)
    return findings


def _check_iam(iam: Any, owner: Ownership, state: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for key, what in _IAM_ROLES:
        arn = state.get(key)
        if not arn:
            continue
        name = str(arn).rsplit("/", 1)[-1]
        answer = _call("iam:GetRole", iam.get_role, tolerate={"NoSuchEntity"}, RoleName=name)
        if answer is None:
            findings.append(Finding("iam_roles", f"The IAM role {name} ({what}) no longer exists."))
            continue
        lost = _lost_tags(owner, answer["Role"].get("Tags"), f"The IAM role {name}")
        if lost is not None:
            findings.append(lost)
    profile_arn = state.get("node_instance_profile_arn")
    if profile_arn:
        name = str(profile_arn).rsplit("/", 1)[-1]
        answer = _call(
            "iam:GetInstanceProfile",
            iam.get_instance_profile,
            tolerate={"NoSuchEntity"},
            InstanceProfileName=name,
        )
        if answer is None:
            findings.append(
                Finding("iam_roles", f"The instance profile {name} (the nodes') no longer exists.")
            )
    return findings


def _check_eks(
    eks: Any, owner: Ownership, state: dict[str, Any], node_groups: Sequence[ExpectedNodeGroup]
) -> list[Finding]:
    name = state.get("eks_cluster_name")
    if not name:
        return []
    answer = _call(
        "eks:DescribeCluster",
        eks.describe_cluster,
        tolerate={"ResourceNotFoundException"},
        name=name,
    )
    if answer is None:
        # Its node groups went with it: one finding says it all.
        return [Finding("eks_cluster", f"The EKS cluster {name} no longer exists.")]
    cluster = answer["cluster"]
    findings: list[Finding] = []
    status = str(cluster.get("status", ""))
    if status not in ("ACTIVE", "UPDATING"):
        findings.append(Finding("eks_cluster", f"The EKS cluster {name} is {status}, not ACTIVE."))
    lost = _lost_tags(owner, cluster.get("tags"), f"The EKS cluster {name}")
    if lost is not None:
        findings.append(lost)
    if node_groups:
        present: set[str] = set()
        token: str | None = None
        while True:
            page = _call(
                "eks:ListNodegroups",
                eks.list_nodegroups,
                clusterName=name,
                maxResults=NODE_GROUPS_PER_PAGE,
                **({"nextToken": token} if token else {}),
            )
            present.update(page.get("nodegroups", []))
            token = page.get("nextToken")
            if not token:
                break
        for group in node_groups:
            if group.name not in present:
                findings.append(
                    Finding(
                        "node_groups",
                        f"The node group {group.name} of {group.owner} no longer exists in the "
                        f"EKS cluster {name}.",
                    )
                )
    return findings


def _check_buckets(s3: Any, owner: Ownership, state: dict[str, Any]) -> list[Finding]:
    recorded = {p: str(n) for p, n in (state.get("buckets") or {}).items() if n}
    if not recorded:
        return []
    listing = _call("s3:ListAllMyBuckets", s3.list_buckets)
    existing = {b["Name"] for b in listing.get("Buckets", [])}
    findings: list[Finding] = []
    for purpose, name in sorted(recorded.items()):
        if name not in existing:
            findings.append(
                Finding("buckets", f"The S3 bucket {name} ({purpose}) no longer exists.")
            )
            continue
        tagging = _call(
            "s3:GetBucketTagging", s3.get_bucket_tagging, tolerate={"NoSuchTagSet"}, Bucket=name
        )
        lost = _lost_tags(owner, (tagging or {}).get("TagSet"), f"The S3 bucket {name}")
        if lost is not None:
            findings.append(lost)
    return findings


def role_unusable_detail(role_arn: str, who: str) -> str:
    return (
        f"Lakeplane can no longer assume {role_arn} with this account's external ID. Check "
        f"that the role still exists and that its trust policy allows {who} with the "
        "condition sts:ExternalId, then verify the cloud account again."
    )


def inspect_compute_plane(
    clients: AwsClients,
    *,
    role_arn: str,
    external_id: str,
    session_name: str,
    region: str,
    owner: Ownership,
    state: dict[str, Any],
    node_groups: Sequence[ExpectedNodeGroup] = (),
    vendor_principal: str | None = None,
) -> Inspection:
    """Every recorded resource of one compute plane, checked with read-only calls.

    Raises :class:`AwsUnavailable` when AWS could not answer (no verdict; check later).
    """
    counter = _Counter()
    inspection = Inspection()
    sts = counter.attach(clients.client("sts", region=region))
    try:
        try:
            credentials = clients.assume_role(
                role_arn,
                session_name=session_name,
                external_id=external_id,
                duration_seconds=DRIFT_SESSION_SECONDS,
                sts_client=sts,
            )
        except AwsAccessDenied:
            who = vendor_principal or "the Lakeplane control plane"
            inspection.findings.append(Finding(CHECK_ROLE, role_unusable_detail(role_arn, who)))
            return inspection

        def client(service: str) -> Any:
            return counter.attach(
                clients.client(service, credentials=credentials, region=region, max_attempts=2)
            )

        try:
            inspection.findings.extend(_check_ec2(client("ec2"), owner, state))
            inspection.findings.extend(_check_iam(client("iam"), owner, state))
            inspection.findings.extend(_check_eks(client("eks"), owner, state, node_groups))
            inspection.findings.extend(_check_buckets(client("s3"), owner, state))
        except _Denied as denied:
            inspection.findings.append(
                Finding(
                    CHECK_PERMISSIONS,
                    f"The role's permissions no longer allow {denied.action}, which Lakeplane "
                    "needs. Update the role's policy from the latest Lakeplane onboarding "
                    "template (CloudFormation stack update or Terraform apply).",
                )
            )
        return inspection
    finally:
        inspection.aws_calls = counter.count


__all__ = [
    "MAX_CALLS_PER_PLANE",
    "AwsUnavailable",
    "ExpectedNodeGroup",
    "Finding",
    "Inspection",
    "inspect_compute_plane",
]
