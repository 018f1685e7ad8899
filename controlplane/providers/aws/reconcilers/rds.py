"""The PostgreSQL database behind a managed Hive metastore: an RDS instance in the compute
plane's private subnets.

Three pieces per metastore, in this order (and deleted in reverse):

* a DB subnet group over the compute plane's private subnets;
* a security group in the compute plane's VPC that lets only the compute plane's security
  groups (its nodes', its EKS cluster's) reach PostgreSQL on 5432;
* the DB instance: PostgreSQL, encrypted, never publicly accessible, 7 days of backups, and the
  master password created and rotated by RDS in the customer's Secrets Manager
  (``ManageMasterUserPassword``). Lakeplane never sees the password: it records the secret's ARN,
  which the agent resolves inside the VPC with its own role (DESIGN.md "Data separation").

Identity: RDS names are unique per account and region, so the subnet group and the instance are
named after the metastore (``lakeplane-ms-…``) and the name is the lookup key; ownership is
checked on the tags (managed-by, compute plane, metastore). The security group is found by its
tags like the compute plane's own groups. Deleting the instance always takes a final snapshot,
named ``<instance>-final``, so a deleted metastore's metadata can be restored.

One reconciler instance serves one metastore (like the node group reconciler serves one node
group), built from a :class:`MetastoreDatabaseSpec`.

Reads from state: ``vpc_id``, ``private_subnet_ids``, ``node_security_group_id``,
``cluster_security_group_id``, ``eks_cluster_name`` (all the compute plane's).
Records: ``db_subnet_group``, ``db_security_group_id``, ``db_instance_id``, ``db_host``,
``db_port``, ``db_name``, ``db_username``, ``master_secret_arn``; on delete
``db_final_snapshot``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers import _ec2
from controlplane.providers.aws.reconcilers._ec2 import Resource
from controlplane.providers.aws.reconcilers.base import (
    NAME_PREFIX,
    PlannedAction,
    PlanVerb,
    ReconcileContext,
    ReconcileError,
    WaitFor,
    error_code,
    translate_client_error,
)

KIND_INSTANCE = "rds:db-instance"
KIND_SUBNET_GROUP = "rds:db-subnet-group"
KIND_SECURITY_GROUP = "ec2:security-group"
METASTORE_KEY = "lakeplane:metastore"
POSTGRES_PORT = 5432
# An instance takes 5-15 minutes to create and about as long to delete; polling faster only
# spends API calls.
POLL_SECONDS = 30.0
STATE_KEYS = (
    "db_subnet_group",
    "db_security_group_id",
    "db_instance_id",
    "db_host",
    "db_port",
    "db_name",
    "db_username",
    "master_secret_arn",
)
# Statuses that end by themselves (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
# accessing-monitoring.html): wait.
_GOING = {
    "creating",
    "backing-up",
    "modifying",
    "configuring-enhanced-monitoring",
    "configuring-log-exports",
    "configuring-iam-database-auth",
    "maintenance",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "stopping",
    "storage-optimization",
    "upgrading",
    "moving-to-vpc",
    "converting-to-vpc",
    "deleting",
}
_QUOTA = {
    "InstanceQuotaExceeded",
    "InstanceQuotaExceededFault",
    "StorageQuotaExceeded",
    "StorageQuotaExceededFault",
    "DBSubnetGroupQuotaExceeded",
    "DBSubnetGroupQuotaExceededFault",
    "DBSubnetQuotaExceededFault",
    "SnapshotQuotaExceeded",
    "SnapshotQuotaExceededFault",
}
_BUSY = {"InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBSubnetGroupStateFault"}
_INSTANCE_GONE = {"DBInstanceNotFound", "DBInstanceNotFoundFault"}
_SUBNET_GROUP_GONE = {"DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"}


@dataclass(frozen=True)
class MetastoreDatabaseSpec:
    """The database of one managed metastore, as Lakeplane provisions it."""

    metastore_id: str
    instance_class: str = "db.t4g.small"
    allocated_storage_gib: int = 20
    # A major version: RDS picks its current default minor version and patches it in the
    # maintenance window (AutoMinorVersionUpgrade).
    engine_version: str = "16"
    database_name: str = "metastore"
    username: str = "hive"
    backup_retention_days: int = 7

    @property
    def identifier(self) -> str:
        """``lakeplane-ms-…``: letters, digits and single hyphens, as RDS requires."""
        return f"{NAME_PREFIX}{self.metastore_id}".replace("_", "-").lower()

    @property
    def subnet_group_name(self) -> str:
        return self.identifier

    @property
    def final_snapshot(self) -> str:
        return f"{self.identifier}-final"

    def summary(self) -> str:
        return (
            f"PostgreSQL {self.engine_version} {self.instance_class}, "
            f"{self.allocated_storage_gib} GiB gp3, encrypted, private"
        )


def _rds_call(
    action: str, fn: Callable[..., Any], *, tolerate: Collection[str] = (), **kwargs: Any
) -> Any:
    """One RDS call: quota and busy answers read in the customer's words, the rest as usual."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = error_code(exc)
        if code in tolerate:
            raise
        if code in _QUOTA:
            message = exc.response.get("Error", {}).get("Message", "") or code
            raise ReconcileError(
                "quota_exceeded",
                f"rds:{action} hit an RDS quota in your account ({code}: {message}). Raise it "
                "in the Service Quotas console (Amazon RDS) or delete unused DB instances, "
                "then retry the operation.",
            ) from exc
        if code in _BUSY:
            raise WaitFor(f"rds:{action}: {code}", delay=POLL_SECONDS) from exc
        if code == "InsufficientDBInstanceCapacity":
            raise ReconcileError(
                "capacity_unavailable",
                f"RDS has no capacity for this instance class in the compute plane's "
                f"availability zones right now ({code}); retry later.",
            ) from exc
        raise translate_client_error(exc, f"rds:{action}") from exc


def _tag_map(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


class MetastoreDatabaseReconciler:
    """ensure/delete the database of one metastore; ``name`` is the workflow step's name."""

    name = "metastore_database"

    def __init__(self, spec: MetastoreDatabaseSpec) -> None:
        self.spec = spec

    # --- ownership and lookups ----------------------------------------------------------

    def _tags(self, ctx: ReconcileContext, name: str) -> list[dict[str, str]]:
        return ctx.owner.tags(name, **{METASTORE_KEY: self.spec.metastore_id})

    def _ours(self, ctx: ReconcileContext, tags: list[dict[str, str]] | None) -> bool:
        return ctx.owner.owns(tags) and _tag_map(tags).get(METASTORE_KEY) == self.spec.metastore_id

    def _conflict(self, kind: str, name: str) -> ReconcileError:
        return ReconcileError(
            "resource_conflict",
            f"An RDS {kind} named {name} already exists in this account but is not tagged as "
            f"metastore {self.spec.metastore_id}'s. Rename or delete it, then retry.",
        )

    def _instance(self, rds: Any) -> Resource | None:
        try:
            found = _rds_call(
                "DescribeDBInstances",
                rds.describe_db_instances,
                tolerate=_INSTANCE_GONE,
                DBInstanceIdentifier=self.spec.identifier,
            )["DBInstances"]
        except ClientError:
            return None
        return found[0] if found else None

    def _subnet_group(self, rds: Any) -> Resource | None:
        try:
            found = _rds_call(
                "DescribeDBSubnetGroups",
                rds.describe_db_subnet_groups,
                tolerate=_SUBNET_GROUP_GONE,
                DBSubnetGroupName=self.spec.subnet_group_name,
            )["DBSubnetGroups"]
        except ClientError:
            return None
        return found[0] if found else None

    def _resource_tags(self, rds: Any, arn: str) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = _rds_call(
            "ListTagsForResource", rds.list_tags_for_resource, ResourceName=arn
        )["TagList"]
        return tags

    def _security_groups(self, ctx: ReconcileContext) -> list[Resource]:
        return _ec2.describe_owned(
            ctx,
            "DescribeSecurityGroups",
            "SecurityGroups",
            Filters=[{"Name": f"tag:{METASTORE_KEY}", "Values": [self.spec.metastore_id]}],
        )

    def _sg_name(self, ctx: ReconcileContext) -> str:
        return ctx.owner.resource_name(f"{self.spec.metastore_id}-db")

    def _sources(self, ctx: ReconcileContext) -> list[str]:
        """The groups allowed in: the compute plane's, and the one EKS gives managed nodes."""
        sources = [
            ctx.state.get("node_security_group_id"),
            ctx.state.get("cluster_security_group_id"),
        ]
        cluster = ctx.state.get("eks_cluster_name")
        if cluster:
            try:
                described = ctx.clients("eks").describe_cluster(name=cluster)["cluster"]
                sources.append(
                    (described.get("resourcesVpcConfig") or {}).get("clusterSecurityGroupId")
                )
            except ClientError as exc:
                raise translate_client_error(exc, "eks:DescribeCluster") from exc
        return sorted({str(s) for s in sources if s})

    # --- plan ---------------------------------------------------------------------------

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]:
        rds = ctx.clients("rds")
        spec = self.spec
        actions = []
        group = self._subnet_group(rds)
        verb: PlanVerb = "none" if group else "create"
        actions.append(PlannedAction(verb, KIND_SUBNET_GROUP, spec.subnet_group_name))
        sgs = self._security_groups(ctx)
        verb = "none" if sgs else "create"
        actions.append(
            PlannedAction(verb, KIND_SECURITY_GROUP, self._sg_name(ctx), "5432 from the nodes")
        )
        instance = self._instance(rds)
        if instance is None:
            actions.append(PlannedAction("create", KIND_INSTANCE, spec.identifier, spec.summary()))
        elif instance.get("DBInstanceStatus") in _GOING:
            actions.append(
                PlannedAction(
                    "wait", KIND_INSTANCE, spec.identifier, str(instance["DBInstanceStatus"])
                )
            )
        else:
            actions.append(PlannedAction("none", KIND_INSTANCE, spec.identifier))
        return actions

    # --- ensure -------------------------------------------------------------------------

    def ensure(self, ctx: ReconcileContext) -> str:
        vpc_id = ctx.state.get("vpc_id")
        subnets = sorted(ctx.state.get("private_subnet_ids") or [])
        if not vpc_id or not subnets:
            raise ReconcileError(
                "missing_prerequisite",
                "The compute plane has no VPC or private subnets recorded; create the metastore "
                "once the compute plane is ready.",
            )
        rds = ctx.clients("rds")
        self._remember(ctx, "db_subnet_group", self._ensure_subnet_group(ctx, rds, subnets))
        group_id = self._ensure_security_group(ctx, str(vpc_id))
        self._remember(ctx, "db_security_group_id", group_id)
        instance = self._ensure_instance(ctx, rds, group_id)
        return (
            f"database {self.spec.identifier} available at "
            f"{ctx.state.get('db_host')}:{ctx.state.get('db_port')}"
            f" ({instance.get('EngineVersion', self.spec.engine_version)})"
        )

    @staticmethod
    def _remember(ctx: ReconcileContext, key: str, value: Any) -> None:
        if ctx.state.get(key) != value:
            ctx.remember(key, value)

    def _ensure_subnet_group(self, ctx: ReconcileContext, rds: Any, subnets: list[str]) -> str:
        name = self.spec.subnet_group_name
        group = self._subnet_group(rds)
        if group is None:
            _rds_call(
                "CreateDBSubnetGroup",
                rds.create_db_subnet_group,
                DBSubnetGroupName=name,
                DBSubnetGroupDescription=(
                    f"Lakeplane: the database of metastore {self.spec.metastore_id}"
                ),
                SubnetIds=subnets,
                Tags=self._tags(ctx, name),
            )
            return name
        if not self._ours(ctx, self._resource_tags(rds, group["DBSubnetGroupArn"])):
            raise self._conflict("DB subnet group", name)
        current = sorted(s["SubnetIdentifier"] for s in group.get("Subnets") or [])
        if current != subnets:
            _rds_call(
                "ModifyDBSubnetGroup",
                rds.modify_db_subnet_group,
                DBSubnetGroupName=name,
                SubnetIds=subnets,
            )
        return name

    def _ensure_security_group(self, ctx: ReconcileContext, vpc_id: str) -> str:
        client = _ec2.ec2(ctx)
        name = self._sg_name(ctx)
        recorded = ctx.state.get("db_security_group_id")
        group, extras = _ec2.choose(self._security_groups(ctx), "GroupId", [recorded])
        if group is None:
            # Names are unique per VPC: a retried create answers InvalidGroup.Duplicate and the
            # group the first attempt made is found by its tags.
            _ec2.call_ignoring(
                client,
                "CreateSecurityGroup",
                ("InvalidGroup.Duplicate",),
                GroupName=name,
                Description=f"Lakeplane: PostgreSQL of metastore {self.spec.metastore_id}",
                VpcId=vpc_id,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": self._tags(ctx, name)}
                ],
            )
            group, extras = _ec2.choose(self._security_groups(ctx), "GroupId")
            if group is None:
                raise ReconcileError(
                    "resource_conflict",
                    f"A security group named {name} exists in {vpc_id} without Lakeplane's "
                    "tags; delete or rename it, then retry.",
                )
        group_id = str(group["GroupId"])
        self._remember(ctx, "db_security_group_id", group_id)
        for extra in extras:
            _ec2.call_ignoring(client, "DeleteSecurityGroup", (), GroupId=extra["GroupId"])
        allowed = {
            pair["GroupId"]
            for permission in group.get("IpPermissions") or []
            if permission.get("IpProtocol") == "tcp"
            and permission.get("FromPort") == POSTGRES_PORT
            and permission.get("ToPort") == POSTGRES_PORT
            for pair in permission.get("UserIdGroupPairs") or []
        }
        missing = [s for s in self._sources(ctx) if s not in allowed]
        if missing:
            _ec2.call_ignoring(
                client,
                "AuthorizeSecurityGroupIngress",
                ("InvalidPermission.Duplicate",),
                GroupId=group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": POSTGRES_PORT,
                        "ToPort": POSTGRES_PORT,
                        "UserIdGroupPairs": [
                            {"GroupId": s, "Description": "compute plane to the metastore DB"}
                            for s in missing
                        ],
                    }
                ],
            )
        return group_id

    def _ensure_instance(self, ctx: ReconcileContext, rds: Any, group_id: str) -> Resource:
        spec = self.spec
        instance = self._instance(rds)
        if instance is None:
            instance = self._create_instance(ctx, rds, group_id)
        elif not self._ours(ctx, instance.get("TagList")):
            raise self._conflict("DB instance", spec.identifier)
        self._remember(ctx, "db_instance_id", spec.identifier)
        status = str(instance.get("DBInstanceStatus", ""))
        # The ARN is known from the create's answer on: record it before waiting.
        secret = (instance.get("MasterUserSecret") or {}).get("SecretArn")
        if secret:
            self._remember(ctx, "master_secret_arn", secret)
        if status in _GOING:
            raise WaitFor(f"database {spec.identifier} is {status}", delay=POLL_SECONDS)
        if status != "available":
            raise ReconcileError(
                "database_failed",
                f"The metastore's database {spec.identifier} is {status}. See its events in the "
                "RDS console (storage full, a KMS key disabled, or a network change), fix the "
                "cause, then retry.",
            )
        if not secret:
            raise ReconcileError(
                "database_misconfigured",
                f"The database {spec.identifier} has no RDS-managed master password; turn "
                "'Manage master credentials in AWS Secrets Manager' back on, then retry.",
            )
        endpoint = instance.get("Endpoint") or {}
        self._remember(ctx, "db_host", endpoint.get("Address"))
        self._remember(ctx, "db_port", int(endpoint.get("Port") or POSTGRES_PORT))
        self._remember(ctx, "db_name", instance.get("DBName") or spec.database_name)
        self._remember(ctx, "db_username", instance.get("MasterUsername") or spec.username)
        return instance

    def _create_instance(self, ctx: ReconcileContext, rds: Any, group_id: str) -> Resource:
        spec = self.spec
        try:
            created: Resource = _rds_call(
                "CreateDBInstance",
                rds.create_db_instance,
                tolerate={"DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"},
                DBInstanceIdentifier=spec.identifier,
                Engine="postgres",
                EngineVersion=spec.engine_version,
                AutoMinorVersionUpgrade=True,
                DBInstanceClass=spec.instance_class,
                AllocatedStorage=spec.allocated_storage_gib,
                StorageType="gp3",
                StorageEncrypted=True,
                PubliclyAccessible=False,
                DBSubnetGroupName=spec.subnet_group_name,
                VpcSecurityGroupIds=[group_id],
                Port=POSTGRES_PORT,
                DBName=spec.database_name,
                MasterUsername=spec.username,
                # RDS creates and rotates the password in the customer's Secrets Manager;
                # no password is ever sent or received by Lakeplane.
                ManageMasterUserPassword=True,
                BackupRetentionPeriod=spec.backup_retention_days,
                CopyTagsToSnapshot=True,
                DeletionProtection=False,
                Tags=self._tags(ctx, spec.identifier),
            )["DBInstance"]
        except ClientError:
            # A create whose answer was lost, or someone else's instance: look and judge.
            found = self._instance(rds)
            if found is None:
                raise WaitFor(
                    f"database {spec.identifier} is being replaced", delay=POLL_SECONDS
                ) from None
            return found
        # Record the name at once: a crash from here on adopts this instance.
        ctx.remember("db_instance_id", spec.identifier)
        return created

    # --- delete -------------------------------------------------------------------------

    def delete(self, ctx: ReconcileContext) -> str:
        rds = ctx.clients("rds")
        spec = self.spec
        instance = self._instance(rds)
        if instance is not None and self._ours(ctx, instance.get("TagList")):
            if instance.get("DBInstanceStatus") != "deleting":
                try:
                    _rds_call(
                        "DeleteDBInstance",
                        rds.delete_db_instance,
                        tolerate=_INSTANCE_GONE | {"DBSnapshotAlreadyExists"},
                        DBInstanceIdentifier=spec.identifier,
                        SkipFinalSnapshot=False,
                        FinalDBSnapshotIdentifier=spec.final_snapshot,
                        DeleteAutomatedBackups=True,
                    )
                except ClientError as exc:
                    if error_code(exc) == "DBSnapshotAlreadyExists":
                        raise ReconcileError(
                            "resource_conflict",
                            f"A DB snapshot named {spec.final_snapshot} already exists, so the "
                            "database's final snapshot cannot be taken. Rename or delete that "
                            "snapshot, then retry.",
                        ) from exc
                self._remember(ctx, "db_final_snapshot", spec.final_snapshot)
            if self._instance(rds) is not None:
                raise WaitFor(f"database {spec.identifier} is deleting", delay=POLL_SECONDS)
        for key in ("db_instance_id", "db_host", "db_port", "master_secret_arn"):
            if ctx.state.get(key) is not None:
                ctx.forget(key)

        groups = self._security_groups(ctx)
        for group in groups:
            # RDS releases its network interfaces a little after the instance is gone: until
            # then the delete answers DependencyViolation, which waits and retries.
            _ec2.call_ignoring(_ec2.ec2(ctx), "DeleteSecurityGroup", (), GroupId=group["GroupId"])
        if ctx.state.get("db_security_group_id") is not None:
            ctx.forget("db_security_group_id")

        subnet_group = self._subnet_group(rds)
        if subnet_group is not None and self._ours(
            ctx, self._resource_tags(rds, subnet_group["DBSubnetGroupArn"])
        ):
            with contextlib.suppress(ClientError):  # already gone
                _rds_call(
                    "DeleteDBSubnetGroup",
                    rds.delete_db_subnet_group,
                    tolerate=_SUBNET_GROUP_GONE,
                    DBSubnetGroupName=spec.subnet_group_name,
                )
        if ctx.state.get("db_subnet_group") is not None:
            ctx.forget("db_subnet_group")
        snapshot = ctx.state.get("db_final_snapshot")
        kept = f"; final snapshot {snapshot} kept" if snapshot else ""
        return f"database {spec.identifier} deleted{kept}"
