"""The wire contract between the control plane and the compute-plane agent.

This module is the only definition of what crosses the wire; the control plane's agent API imports
these models to parse reports and to serialise desired state. Everything is frozen and
``extra="forbid"`` so a typo or an unknown field is an error on both sides rather than silently
dropped data.

Data separation (DESIGN.md): reports carry metadata only. Every string has a length bound, every
list and mapping a size bound, and there is no free-form ``dict[str, Any]`` anywhere — a test walks
the JSON schemas and fails on any unbounded or untyped field.

Versioning: top-level documents carry ``schema_version``. Additive changes (a new optional field or
a new list with an empty default) keep ``CONTRACT_VERSION``; anything else gets a new version, and
the control plane sends a desired state in the version the agent announced in ``Registration`` /
``Heartbeat`` (``contract_version``). Because models forbid unknown fields, a control plane must not
send a newer field to an agent that announced an older contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from computeplane_agent.access import AccessRules

CONTRACT_VERSION: Literal["2026-11-01"] = "2026-11-01"
SchemaVersion = Literal["2026-11-01"]

# Namespaces the agent owns. Its RBAC is granted in these namespaces only (see install.py).
AGENT_NAMESPACE = "lakeplane-system"
WORKLOAD_NAMESPACE = "lakeplane-workloads"

# Size bounds, chosen generously above what the product allows so they only ever stop abuse:
# a compute plane holds at most a few dozen clusters; a catalog has a few dozen properties.
MAX_CLUSTERS = 200
MAX_CATALOGS_PER_CLUSTER = 100
MAX_CATALOG_PROPERTIES = 200
MAX_WORKERS = 1000
MAX_USAGE_SAMPLES = 5000
MAX_MESSAGE = 2000
# An organisation has a handful of metastores and caches and tens of catalogs per compute plane.
MAX_METASTORES = 50
MAX_CACHES = 50
MAX_CATALOGS = 500
MAX_CATALOG_SECRETS = 50
MAX_CACHE_MOUNTS = 50
MAX_CACHE_WORKERS = 500
MAX_POLICY_PATHS = 100

ClusterId = Annotated[str, StringConstraints(pattern=r"^cl_[0-9a-z]{1,40}$", max_length=43)]
ComputePlaneId = Annotated[str, StringConstraints(pattern=r"^cp_[0-9a-z]{1,40}$", max_length=43)]
CatalogId = Annotated[str, StringConstraints(pattern=r"^cat_[0-9a-z]{1,40}$", max_length=44)]
MetastoreId = Annotated[str, StringConstraints(pattern=r"^ms_[0-9a-z]{1,40}$", max_length=43)]
CacheId = Annotated[str, StringConstraints(pattern=r"^cache_[0-9a-z]{1,40}$", max_length=46)]
# Issued by the control plane at registration; ``agt_…`` is recommended, any short prefix works.
AgentId = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,8}_[0-9a-z]{1,40}$", max_length=49)]
# Report ids are chosen by the agent (a UUID or ULID); they are the idempotency key of a report.
ReportId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$", max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=63)]
# Presto/Trino identifiers for catalogs (API.md: ``[a-z][a-z0-9_]*``).
CatalogName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$", max_length=63)]
ConnectorName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$", max_length=63)]
InstanceType = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", max_length=32)
]
EngineVersion = Annotated[str, StringConstraints(pattern=r"^[0-9][0-9A-Za-z.+-]*$", max_length=32)]
SoftwareVersion = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# A Kubernetes label value (node group names are used as the value of a node label).
LabelValue = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$", max_length=63),
]
PropertyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$", max_length=128)]
PropertyValue = Annotated[str, StringConstraints(max_length=4096)]
SecretArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:secretsmanager:[^\s]+$", max_length=2048)
]
# A registry host with an optional path prefix, e.g. ``123.dkr.ecr.eu-west-1.amazonaws.com/mirror``.
RegistryMirror = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$", max_length=255)
]
Cidr = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$", max_length=18)
]
# DNS names of in-VPC endpoints (an RDS instance, a Kubernetes Service).
Hostname = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", max_length=253),
]
DatabaseIdentifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$", max_length=63)
]
AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$", max_length=32)]
AwsAccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$", max_length=12)]
S3Uri = Annotated[
    str,
    StringConstraints(pattern=r"^s3a?://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$", max_length=1024),
]
# Thrift URIs of a Hive metastore; several, comma separated, for failover.
ThriftUris = Annotated[
    str,
    StringConstraints(
        pattern=r"^thrift://[A-Za-z0-9.-]+:[0-9]{1,5}(,thrift://[A-Za-z0-9.-]+:[0-9]{1,5})*$",
        max_length=1024,
    ),
]
# What an Alluxio mount points at: a bucket of the customer's, or an on-premises HDFS (hybrid).
UnderStorageUri = Annotated[
    str,
    StringConstraints(
        pattern=r"^(s3a?|hdfs)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$", max_length=1024
    ),
]
# A path in the Alluxio namespace.
CachePath = Annotated[str, StringConstraints(pattern=r"^/\S*$", max_length=1024)]
# A five-field cron expression (Kubernetes CronJob syntax).
CronSchedule = Annotated[str, StringConstraints(pattern=r"^\S+ \S+ \S+ \S+ \S+$", max_length=100)]
Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
ErrorCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$", max_length=64)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=512)]


# Pydantic renders a mapping with constrained keys as ``patternProperties`` and leaves
# ``additionalProperties`` open in the JSON schema, although validation rejects any other key.
# Closing it keeps the published schema as strict as the validator.
_CLOSED_MAPPING: JsonDict = {"additionalProperties": False}


class ContractModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


# --- desired state (control plane -> agent) -------------------------------------------------


class NodeSpec(ContractModel):
    instance_type: InstanceType


class WorkerSpec(ContractModel):
    instance_type: InstanceType
    replicas: int = Field(ge=0, le=MAX_WORKERS)
    spot: bool = False
    # The autoscaling ceiling (API ``max_count``). Cluster-wide query memory is sized for it, so a
    # resize changes worker replicas only and never rolls the coordinator.
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_WORKERS)


class SecretRef(ContractModel):
    """A secret in the customer's Secrets Manager, resolved by the agent inside the VPC.

    ``json_key`` picks one key of a JSON secret (RDS-managed master secrets are
    ``{"username": …, "password": …}``); without it the whole SecretString is the value.
    """

    arn: SecretArn
    json_key: PropertyKey | None = None


class ThriftMetastore(ContractModel):
    """A Hive metastore reached over Thrift: a managed one (its in-cluster Service) or the
    customer's own."""

    kind: Literal["thrift"] = "thrift"
    uris: ThriftUris
    # Set for a managed metastore, so the agent can tell catalogs waiting for it apart.
    metastore_id: MetastoreId | None = None


class GlueMetastore(ContractModel):
    kind: Literal["glue"] = "glue"
    region: AwsRegion
    catalog_id: AwsAccountId | None = None


class CatalogSpec(ContractModel):
    """A catalog defined once per organisation and mounted on every cluster that attaches it.

    ``properties`` use the engine-neutral keys of the connector registry
    (``computeplane_agent/connectors.py``); the agent renders each engine's property names.
    Credentials never travel here: ``secrets`` maps a property key to a Secrets Manager ARN in
    the customer's account, which the agent resolves inside the VPC (DESIGN.md "Data
    separation"). ``version`` grows with every change; the agent reports which version is live
    on each cluster.
    """

    id: CatalogId
    name: CatalogName
    connector: ConnectorName
    version: int = Field(ge=1)
    properties: dict[PropertyKey, PropertyValue] = Field(
        default_factory=dict, max_length=MAX_CATALOG_PROPERTIES, json_schema_extra=_CLOSED_MAPPING
    )
    secrets: dict[PropertyKey, SecretRef] = Field(
        default_factory=dict, max_length=MAX_CATALOG_SECRETS, json_schema_extra=_CLOSED_MAPPING
    )
    metastore: ThriftMetastore | GlueMetastore | None = Field(default=None, discriminator="kind")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ClockTime = Annotated[
    str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", max_length=5)
]
TimeZoneName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$", max_length=64),
]
MAX_SCHEDULES = 20


class ScheduleWindow(ContractModel):
    """Weekdays and a local time range [start, end) with a worker floor (computeplane_agent
    /schedules.py)."""

    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime
    min_count: int = Field(ge=0, le=MAX_WORKERS)

    @model_validator(mode="after")
    def _start_before_end(self) -> ScheduleWindow:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class AutoscalingSpec(ContractModel):
    """The cluster's autoscaling policy, decided on by the agent (``computeplane_agent.autoscale``).

    ``worker_quota`` is what the organisation's worker quota leaves for this cluster when the
    control plane published it (None: no quota); the control plane clamps any decision to the
    quota as it stands when the decision is reported.
    """

    enabled: bool = False
    min_count: int = Field(ge=0, le=MAX_WORKERS)
    max_count: int = Field(ge=1, le=MAX_WORKERS)
    target_queued: int = Field(default=0, ge=0, le=10_000)
    target_cpu: float = Field(default=0.8, gt=0, le=1)
    target_memory: float = Field(default=0.8, gt=0, le=1)
    scale_out_window_seconds: int = Field(default=60, ge=1, le=24 * 3600)
    scale_in_idle_minutes: int = Field(default=10, ge=1, le=24 * 60)
    scale_out_step: int = Field(default=2, ge=1, le=MAX_WORKERS)
    scale_in_step: int = Field(default=1, ge=1, le=MAX_WORKERS)
    cooldown_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    auto_suspend_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    worker_quota: int | None = Field(default=None, ge=0, le=MAX_WORKERS)
    schedules: list[ScheduleWindow] = Field(default_factory=list, max_length=MAX_SCHEDULES)
    # The organisation's time zone (IANA name): schedule windows are read in it.
    time_zone: TimeZoneName = "UTC"

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> AutoscalingSpec:
        if self.min_count > self.max_count:
            raise ValueError("min_count is above max_count")
        return self


class ClusterSpec(ContractModel):
    id: ClusterId
    name: Name
    engine: Literal["presto", "trino"]
    version: EngineVersion
    state: Literal["running", "stopped"]
    # Bumped by the control plane to roll every pod (``POST …/restart``); rendered as a pod
    # template annotation so a change triggers a rolling update and nothing else.
    restart_generation: int = Field(default=0, ge=0)
    coordinator: NodeSpec
    workers: WorkerSpec
    # The EKS managed node group the control plane created for this cluster; its nodes carry the
    # label ``lakeplane.io/node-group=<node_group>`` and the matching NoSchedule taint.
    node_group: LabelValue
    # Ids of entries in ``DesiredState.catalogs``.
    catalogs: list[CatalogId] = Field(default_factory=list, max_length=MAX_CATALOGS_PER_CLUSTER)
    # An entry of ``DesiredState.caches``: the cluster reads its object storage through it.
    cache: CacheId | None = None
    # Upper bound of a query's run time; the worker grace period is derived from it so a
    # shutting-down worker finishes its running tasks (1 min .. 24 h).
    max_query_minutes: int = Field(default=60, ge=1, le=1440)
    # Set by ``POST …/drain`` (and by stop, delete and upgrade): the gateway sends the cluster
    # no new queries and lets the running ones finish.
    draining: bool = False
    # None: the agent never changes the worker count on its own (clusters made before
    # autoscaling, and every cluster whose policy is off and has no auto-suspend).
    autoscaling: AutoscalingSpec | None = None
    # The data access rules the engine enforces (computeplane_agent/access.py); None: the
    # engine's default access control.
    access_rules: AccessRules | None = None


class MetastoreDatabase(ContractModel):
    """The PostgreSQL database behind a managed metastore (an RDS instance in the customer's
    private subnets). The password is RDS's own managed secret, read by the agent."""

    host: Hostname
    port: int = Field(default=5432, ge=1, le=65535)
    name: DatabaseIdentifier
    username: DatabaseIdentifier
    password: SecretRef


class MetastoreSpec(ContractModel):
    """A Hive standalone metastore the agent runs in the compute plane (kind ``managed``).

    External (``hive``) and Glue metastores run nowhere: they only shape catalog properties.
    """

    id: MetastoreId
    name: Name
    version: SoftwareVersion
    database: MetastoreDatabase
    warehouse: S3Uri
    replicas: int = Field(default=2, ge=1, le=5)


class CacheMount(ContractModel):
    path: CachePath
    uri: UnderStorageUri


class PreloadPolicy(ContractModel):
    path: CachePath
    # Loaded once when the cache is created, and again on this schedule when given.
    schedule: CronSchedule | None = None


class TtlPolicy(ContractModel):
    path: CachePath
    seconds: int = Field(ge=60, le=365 * 24 * 3600)
    # ``free`` drops the cached copy and keeps the under-storage data.
    action: Literal["free"] = "free"


class CachePolicies(ContractModel):
    preload: list[PreloadPolicy] = Field(default_factory=list, max_length=MAX_POLICY_PATHS)
    pin: list[CachePath] = Field(default_factory=list, max_length=MAX_POLICY_PATHS)
    ttl: list[TtlPolicy] = Field(default_factory=list, max_length=MAX_POLICY_PATHS)
    # Data written through the cache is persisted to under-storage asynchronously.
    write_back: bool = False


class CacheSpec(ContractModel):
    """An Alluxio layer on its own node group; it outlives the clusters that read through it."""

    id: CacheId
    name: Name
    version: SoftwareVersion
    node_group: LabelValue
    worker_instance_type: InstanceType
    workers: int = Field(ge=1, le=MAX_CACHE_WORKERS)
    medium: Literal["mem", "ssd", "nvme"]
    size_gb_per_worker: int = Field(ge=1, le=64 * 1024)
    mounts: list[CacheMount] = Field(default_factory=list, max_length=MAX_CACHE_MOUNTS)
    policies: CachePolicies = Field(default_factory=CachePolicies)


# A regular expression matched against a whole request value (user, source, a header, …).
RoutingPattern = Annotated[str, StringConstraints(min_length=1, max_length=512)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,128}$", max_length=128)]
ClientTag = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MAX_ROUTING_GROUPS = 100
MAX_ROUTING_RULES = 500
MAX_RULE_HEADERS = 20
MAX_RULE_TAGS = 20


class RoutingGroupSpec(ContractModel):
    """A set of clusters that take the same queries; the gateway picks the least loaded."""

    name: Name
    clusters: list[ClusterId] = Field(min_length=1, max_length=MAX_CLUSTERS)
    # Another group's name: where queries go when no cluster of this group can take them.
    fallback: Name | None = None
    # Prefer a cluster with a cache attached (its cache may already hold the data).
    prefer_cache: bool = False


class RoutingMatch(ContractModel):
    """Every given field must match; an empty match matches every request."""

    user: RoutingPattern | None = None
    source: RoutingPattern | None = None
    client_tags: list[ClientTag] = Field(default_factory=list, max_length=MAX_RULE_TAGS)
    headers: dict[HeaderName, RoutingPattern] = Field(
        default_factory=dict, max_length=MAX_RULE_HEADERS, json_schema_extra=_CLOSED_MAPPING
    )
    catalog: RoutingPattern | None = None
    # The session schema (``schema`` in the gateway's own config and in the dry-run API).
    schema_name: RoutingPattern | None = None


class RoutingRuleSpec(ContractModel):
    name: Name
    # Lowest first; ties by name.
    priority: int = Field(default=100, ge=0, le=1_000_000)
    group: Name
    match: RoutingMatch = Field(default_factory=RoutingMatch)


class GatewayHealthSpec(ContractModel):
    interval_seconds: float = Field(default=2.0, gt=0, le=300)
    timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    fail_threshold: int = Field(default=3, ge=1, le=100)
    success_threshold: int = Field(default=2, ge=1, le=100)


class GatewayWakeSpec(ContractModel):
    enabled: bool = True
    max_wait_seconds: float = Field(default=300.0, gt=0, le=3600)


class GatewaySpec(ContractModel):
    """The compute plane's query gateway (computeplane_agent/gateway): one address for every
    cluster of the plane. The agent renders it and writes the gateway's config file from this."""

    enabled: bool = False
    replicas: int = Field(default=2, ge=1, le=10)
    routing_groups: list[RoutingGroupSpec] = Field(
        default_factory=list, max_length=MAX_ROUTING_GROUPS
    )
    rules: list[RoutingRuleSpec] = Field(default_factory=list, max_length=MAX_ROUTING_RULES)
    # The group for a request no rule matches; null: such a request is refused with a reason.
    default_group: Name | None = None
    # Query text leaves the VPC only when the organization turned it on for this plane.
    query_text: bool = False
    health: GatewayHealthSpec = Field(default_factory=GatewayHealthSpec)
    wake: GatewayWakeSpec = Field(default_factory=GatewayWakeSpec)


class DesiredState(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    compute_plane_id: ComputePlaneId
    # Monotonic per compute plane; the agent sends it back as the ETag (``If-None-Match``).
    version: int = Field(ge=0)
    # The NetworkPolicy lets only this CIDR reach the coordinator port.
    vpc_cidr: Cidr
    registry_mirror: RegistryMirror | None = None
    clusters: list[ClusterSpec] = Field(default_factory=list, max_length=MAX_CLUSTERS)
    metastores: list[MetastoreSpec] = Field(default_factory=list, max_length=MAX_METASTORES)
    catalogs: list[CatalogSpec] = Field(default_factory=list, max_length=MAX_CATALOGS)
    caches: list[CacheSpec] = Field(default_factory=list, max_length=MAX_CACHES)
    gateway: GatewaySpec | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> DesiredState:
        catalogs = {c.id for c in self.catalogs}
        caches = {c.id for c in self.caches}
        metastores = {m.id for m in self.metastores}
        for cluster in self.clusters:
            missing = [c for c in cluster.catalogs if c not in catalogs]
            if missing:
                raise ValueError(f"cluster {cluster.id} names unknown catalogs {missing}")
            if cluster.cache is not None and cluster.cache not in caches:
                raise ValueError(f"cluster {cluster.id} names unknown cache {cluster.cache}")
        for catalog in self.catalogs:
            ref = catalog.metastore
            managed = ref.metastore_id if isinstance(ref, ThriftMetastore) else None
            if managed is not None and managed not in metastores:
                raise ValueError(f"catalog {catalog.id} names unknown metastore {managed}")
        names = [c.name for c in self.catalogs]
        if len(names) != len(set(names)):
            raise ValueError("catalog names must be unique within a compute plane")
        return self

    def catalogs_of(self, cluster: ClusterSpec) -> list[CatalogSpec]:
        by_id = {c.id: c for c in self.catalogs}
        return [by_id[c] for c in cluster.catalogs]

    def cache_of(self, cluster: ClusterSpec) -> CacheSpec | None:
        return next((c for c in self.caches if c.id == cluster.cache), None)


# --- registration ---------------------------------------------------------------------------


class Registration(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    bootstrap_token: Token
    agent_version: SoftwareVersion
    kubernetes_version: SoftwareVersion
    contract_version: SchemaVersion = CONTRACT_VERSION


class AgentCredential(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    credential: Token
    expires_at: datetime
    compute_plane_id: ComputePlaneId


# --- reports (agent -> control plane): metadata only ----------------------------------------


class Heartbeat(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    agent_version: SoftwareVersion
    contract_version: SchemaVersion = CONTRACT_VERSION
    sent_at: datetime
    # The desired-state version the agent last applied successfully (None before the first apply).
    applied_version: int | None = Field(default=None, ge=0)


ClusterPhase = Literal[
    "pending", "starting", "running", "degraded", "stopping", "stopped", "failed"
]


class CatalogStatus(ContractModel):
    """Which version of a catalog is live on one cluster.

    ``pending``: the cluster still runs an older version (Trino: the catalog statement has not
    run yet; PrestoDB: the rolling restart is under way); ``failed``: the agent could not make
    it live (a secret it cannot read, a statement the coordinator refused) — see ``message``.
    """

    id: CatalogId
    version: int = Field(ge=0)  # the live version; 0 when none is live yet
    status: Literal["pending", "live", "failed"]
    message: Message | None = None


class ClusterStatus(ContractModel):
    id: ClusterId
    phase: ClusterPhase
    coordinator_ready: bool
    workers_ready: int = Field(ge=0, le=MAX_WORKERS)
    workers_desired: int = Field(ge=0, le=MAX_WORKERS)
    catalogs: list[CatalogStatus] = Field(default_factory=list, max_length=MAX_CATALOGS_PER_CLUSTER)
    message: Message | None = None
    observed_at: datetime


ComponentPhase = Literal["pending", "starting", "running", "degraded", "failed"]


class MetastoreStatus(ContractModel):
    id: MetastoreId
    phase: ComponentPhase
    replicas_ready: int = Field(ge=0, le=5)
    schema_ready: bool
    message: Message | None = None
    observed_at: datetime


class CacheStatus(ContractModel):
    """A cache layer's health and usage: counts only, never paths or file names."""

    id: CacheId
    phase: ComponentPhase
    master_ready: bool
    workers_ready: int = Field(ge=0, le=MAX_CACHE_WORKERS)
    workers_desired: int = Field(ge=0, le=MAX_CACHE_WORKERS)
    bytes_used: int = Field(ge=0, le=2**62)
    bytes_capacity: int = Field(ge=0, le=2**62)
    hit_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    message: Message | None = None
    observed_at: datetime


class AgentError(ContractModel):
    """Why the agent could not apply the latest desired state (it keeps the last good one)."""

    code: ErrorCode
    message: Message
    # The desired-state version that failed, so the control plane can tell a stale error apart.
    version: int | None = Field(default=None, ge=0)


# The one address clients use for the plane's gateway (in the sandbox a loopback URL).
GatewayEndpoint = Annotated[
    str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=512)
]


class GatewayStatus(ContractModel):
    """The plane's gateway as the agent sees it: its address, ready replicas and which draining
    clusters have nothing left running (the control plane's drain operation waits for that)."""

    endpoint: GatewayEndpoint | None = None
    replicas_ready: int = Field(default=0, ge=0, le=10)
    # The ``version`` of the gateway config the replicas serve (a content hash).
    config_version: Annotated[str, StringConstraints(max_length=128)] | None = None
    drained: list[ClusterId] = Field(default_factory=list, max_length=MAX_CLUSTERS)
    message: Message | None = None


class StatusReport(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    report_id: ReportId
    applied_version: int | None = Field(default=None, ge=0)
    clusters: list[ClusterStatus] = Field(default_factory=list, max_length=MAX_CLUSTERS)
    metastores: list[MetastoreStatus] = Field(default_factory=list, max_length=MAX_METASTORES)
    caches: list[CacheStatus] = Field(default_factory=list, max_length=MAX_CACHES)
    error: AgentError | None = None
    sent_at: datetime
    # None while the plane runs no gateway (or an agent predating it).
    gateway: GatewayStatus | None = None


UsageRole = Literal["coordinator", "worker", "metastore", "cache", "gateway"]
# Which subject field a role's sample names; the gateway is one per compute plane and names none.
USAGE_SUBJECT: dict[str, str | None] = {
    "coordinator": "cluster_id",
    "worker": "cluster_id",
    "cache": "cache_id",
    "metastore": "metastore_id",
    "gateway": None,
}


class UsageSample(ContractModel):
    """Ready nodes (or, for the metastore and the gateway, ready replicas on the system nodes) of
    one instance type, for one role of one resource, during a usage period.

    ``role`` absent is the first contract's cluster sample: the control plane splits it into one
    coordinator and workers by instance type. Every other sample names its role and the one
    subject that role runs for.
    """

    cluster_id: ClusterId | None = None
    cache_id: CacheId | None = None
    metastore_id: MetastoreId | None = None
    role: UsageRole | None = None
    instance_type: InstanceType
    nodes: int = Field(ge=0, le=MAX_WORKERS + 1)
    seconds: int = Field(ge=0, le=31 * 24 * 3600)

    @model_validator(mode="after")
    def _one_subject_for_the_role(self) -> UsageSample:
        named = [f for f in ("cluster_id", "cache_id", "metastore_id") if getattr(self, f)]
        expected = USAGE_SUBJECT[self.role] if self.role else "cluster_id"
        if named != ([expected] if expected else []):
            wanted = expected or "no cluster_id, cache_id or metastore_id"
            raise ValueError(f"a {self.role or 'cluster'} sample names {wanted}")
        return self

    @property
    def subject_id(self) -> str | None:
        return self.cluster_id or self.cache_id or self.metastore_id


class UsageReport(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    report_id: ReportId
    period_start: datetime
    period_end: datetime
    samples: list[UsageSample] = Field(default_factory=list, max_length=MAX_USAGE_SAMPLES)

    @model_validator(mode="after")
    def _period_is_ordered(self) -> UsageReport:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


# --- autoscaling decisions (agent -> control plane) --------------------------------------

ScalingAction = Literal["scale_out", "scale_in", "suspend"]


class ScalingReport(ContractModel):
    """One decision of the agent's autoscaler that changes a cluster's worker count.

    ``report_id`` is the decision's id: the agent sends the same report until it is answered, and
    the control plane records it once. The answer is a :class:`ScalingAnswer`.
    """

    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    report_id: ReportId
    cluster_id: ClusterId
    from_count: int = Field(ge=0, le=MAX_WORKERS)
    to_count: int = Field(ge=0, le=MAX_WORKERS)
    action: ScalingAction
    reason: ErrorCode
    detail: Message = ""
    decided_at: datetime


class ScalingAnswer(ContractModel):
    """What the control plane made of a decision: ``workers`` is the count it keeps (the
    decision's, or less when the organisation's quota or the cluster's bounds say so, or the
    current one when it refused: ``accepted`` false, ``message`` why)."""

    schema_version: SchemaVersion = CONTRACT_VERSION
    report_id: ReportId
    cluster_id: ClusterId
    accepted: bool
    workers: int = Field(ge=0, le=MAX_WORKERS)
    message: Message | None = None


# --- the gateway's reports (agent -> control plane) ----------------------------------------

MAX_QUERY_RECORDS = 1000
MAX_QUERY_TEXT = 64 * 1024
QueryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$", max_length=128)]
ShortText = Annotated[str, StringConstraints(max_length=256)]


class QueryRecord(ContractModel):
    """One query as the gateway saw it: metadata only (no text unless the plane allows it)."""

    query_id: QueryId
    cluster_id: ClusterId | None = None
    routing_group: Name | None = None
    user: ShortText | None = None
    source: ShortText | None = None
    state: Literal["FINISHED", "FAILED", "CANCELED"]
    error_name: ShortText | None = None
    queued_ms: int = Field(default=0, ge=0)
    elapsed_ms: int = Field(default=0, ge=0)
    bytes_in: int = Field(default=0, ge=0)
    bytes_out: int = Field(default=0, ge=0)
    started_at: datetime
    finished_at: datetime
    # Present only when ``GatewaySpec.query_text`` is true; the control plane drops it otherwise.
    query_text: Annotated[str, StringConstraints(max_length=MAX_QUERY_TEXT)] | None = None


class QueryReport(ContractModel):
    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    report_id: ReportId
    queries: list[QueryRecord] = Field(default_factory=list, max_length=MAX_QUERY_RECORDS)


class WakeRequest(ContractModel):
    """The gateway routed a query to a group whose clusters all sleep: start this one."""

    schema_version: SchemaVersion = CONTRACT_VERSION
    agent_id: AgentId
    cluster_id: ClusterId


# Every top-level document, for the schema test and for the control plane's OpenAPI component list.
DOCUMENTS: tuple[type[ContractModel], ...] = (
    DesiredState,
    Registration,
    AgentCredential,
    Heartbeat,
    StatusReport,
    UsageReport,
    QueryReport,
    WakeRequest,
    ScalingReport,
    ScalingAnswer,
)
