"""The write path for clusters: create, update, resize, stop, start, restart, delete.

Each function runs in one transaction, checks the cluster's state under a row lock, writes the
new status with a :class:`ClusterEvent`, starts the operation that makes it real and audits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.db import transaction
from django.utils import timezone

from computeplane_agent import connectors, contract
from computeplane_agent.instance_types import UnknownInstanceType, instance_type
from computeplane_agent.versions import DEFAULT_VERSIONS, Engine, UnsupportedVersion, release
from controlplane.caching.services import resolve_cache
from controlplane.catalogs.models import Catalog
from controlplane.catalogs.services import resolve_catalogs, set_cluster_catalogs
from controlplane.clusters import desired, scaling
from controlplane.clusters.models import Cluster, ClusterEvent, ClusterStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.services import ensure_operable, lock_plane_for_new
from controlplane.core import audit, workflows
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput
from controlplane.core.models import Operation
from controlplane.core.naming import ensure_name_free
from controlplane.tenancy.models import Organization

CREATE_KIND = "cluster.create"
RESIZE_KIND = "cluster.resize"
STOP_KIND = "cluster.stop"
START_KIND = "cluster.start"
RESTART_KIND = "cluster.restart"
DELETE_KIND = "cluster.delete"
SUSPEND_KIND = "cluster.suspend"
DRAIN_KIND = "cluster.drain"

MAX_WORKERS = contract.MAX_WORKERS
# Without an explicit max_count a cluster may grow to ten workers (or its size, if larger).
DEFAULT_MAX_WORKERS = 10


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    compute_plane: ComputePlane
    engine: str
    coordinator_instance_type: str
    worker_instance_type: str
    workers: int
    version: str = ""
    workers_min: int | None = None
    workers_max: int | None = None
    spot: bool = False
    auto_suspend_minutes: int | None = None
    catalog_ids: tuple[str, ...] = ()
    cache_id: str | None = None
    # API names of ``scaling.POLICY_FIELDS``; its bounds stand for workers.min_count/max_count.
    autoscaling: dict[str, Any] | None = None
    schedules: tuple[dict[str, Any], ...] = ()


def engine_errors(engine: str, catalogs: list[Catalog]) -> list[str]:
    """Why some of ``catalogs`` cannot be mounted on an ``engine`` cluster (empty when all can).

    Catalogs store engine-neutral keys; a key the engine has no property for (the connector
    registry says which) would make the agent refuse the whole desired state, so it is refused
    here, at attach time, with the names.
    """
    kind = cast(Engine, engine)
    title = connectors.ENGINE_TITLES[kind]
    problems = []
    for catalog in catalogs:
        connector = connectors.CONNECTORS.get(catalog.connector)
        if connector is None:
            problems.append(f"{catalog.name} uses an unknown connector {catalog.connector!r}.")
            continue
        missing = [
            key
            for key in [*catalog.properties, *catalog.secrets]
            if (prop := connector.property(key)) is None or prop.engine_name(kind) is None
        ]
        if missing:
            problems.append(
                f"{catalog.name} ({catalog.id}) sets {', '.join(sorted(missing))}, which "
                f"{title} does not have."
            )
    return problems


def _attach(cluster: Cluster, catalog_ids: tuple[str, ...] | list[str] | None) -> bool:
    """Mount exactly ``catalog_ids`` on ``cluster`` (None: leave as is); True if that changed."""
    if catalog_ids is None:
        return False
    catalogs = resolve_catalogs(cluster.organization, list(catalog_ids))
    problems = engine_errors(cluster.engine, catalogs)
    if problems:
        raise InvalidInput("Some catalogs do not fit this engine.", errors={"catalogs": problems})
    return set_cluster_catalogs(cluster, catalogs)


def _check_bounds(
    count: int, low: int, high: int, errors: dict[str, list[str]], prefix: str = "workers"
) -> None:
    if high < 1 or high > MAX_WORKERS:
        errors[f"{prefix}.max_count"] = [f"Between 1 and {MAX_WORKERS}."]
    elif low > high:
        errors[f"{prefix}.min_count"] = [f"At most max_count ({high})."]
    elif not low <= count <= high:
        errors["workers.count"] = [f"Between min_count ({low}) and max_count ({high})."]


def _one_bound(
    workers: int | None, policy: int | None, name: str, errors: dict[str, list[str]]
) -> int | None:
    """A bound given as ``workers.<name>``, ``autoscaling.<name>`` or both (then equal)."""
    if workers is not None and policy is not None and workers != policy:
        errors[f"autoscaling.{name}"] = [f"Differs from workers.{name} ({workers})."]
    return workers if workers is not None else policy


def validate_request(request: ClusterRequest) -> tuple[str, int, int]:
    """Field errors as 422; returns the resolved version and worker bounds."""
    errors: dict[str, list[str]] = {}
    for field, name in (
        ("coordinator.instance_type", request.coordinator_instance_type),
        ("workers.instance_type", request.worker_instance_type),
    ):
        try:
            instance_type(name)
        except UnknownInstanceType:
            errors[field] = [f"Unknown instance type {name!r}."]
    version = request.version or DEFAULT_VERSIONS[request.engine]  # type: ignore[index]
    try:
        release(request.engine, version)  # type: ignore[arg-type]
    except UnsupportedVersion as exc:
        errors["version"] = [str(exc)]
    policy = request.autoscaling or {}
    given_min = _one_bound(request.workers_min, policy.get("min_count"), "min_count", errors)
    given_max = _one_bound(request.workers_max, policy.get("max_count"), "max_count", errors)
    low = given_min if given_min is not None else min(1, request.workers)
    high = given_max if given_max is not None else max(DEFAULT_MAX_WORKERS, request.workers)
    from_policy = request.workers_min is None and request.workers_max is None and bool(policy)
    _check_bounds(request.workers, low, high, errors, "autoscaling" if from_policy else "workers")
    if errors:
        raise InvalidInput("The cluster cannot be built as requested.", errors=errors)
    return version, low, high


def record_event(
    cluster: Cluster,
    reason: str,
    *,
    nodes: dict[str, int] | None = None,
    spot_nodes: dict[str, int] | None = None,
) -> ClusterEvent:
    """A state change; without ``nodes`` the node counts carry over from the previous event."""
    if nodes is None:
        last = cluster.events.order_by("-at", "-id").first()
        nodes = dict(last.nodes) if last else {}
        spot_nodes = dict(last.spot_nodes) if last else {}
    return ClusterEvent.objects.create(
        cluster=cluster,
        organization_id=cluster.organization_id,
        at=timezone.now(),
        status=cluster.status,
        reason=reason,
        nodes=nodes,
        spot_nodes=spot_nodes or {},
        operation_id=cluster.operation_id,
    )


def _start(actor: Actor, cluster: Cluster, kind: str, status: str, reason: str) -> Operation:
    # Teardown treats a node group that is already gone as deleted: a degraded plane allows it.
    ensure_operable(
        cluster.compute_plane,
        action=f"{kind.split('.')[1]} the cluster",
        allow_degraded=kind == DELETE_KIND,
    )
    operation = workflows.start_resource_operation(
        actor=actor, resource=cluster, kind=kind, action=f"cluster.{reason}", status=status
    )
    record_event(cluster, reason)
    return operation


def create_cluster(
    *, actor: Actor, organization: Organization, request: ClusterRequest
) -> tuple[Cluster, Operation]:
    version, low, high = validate_request(request)
    with transaction.atomic():
        plane = lock_plane_for_new(
            Cluster,
            organization,
            request.name,
            request.compute_plane,
            needs_ready="clusters can be created once it is ready",
        )
        cluster = Cluster.objects.create(
            organization=organization,
            compute_plane=plane,
            name=request.name,
            engine=request.engine,
            version=version,
            coordinator_instance_type=request.coordinator_instance_type,
            worker_instance_type=request.worker_instance_type,
            workers_desired=request.workers,
            workers_min=low,
            workers_max=high,
            spot=request.spot,
            auto_suspend_minutes=request.auto_suspend_minutes,
            schedules=list(request.schedules),
            cache=(
                resolve_cache(organization, request.cache_id, plane) if request.cache_id else None
            ),
        )
        policy = {k: v for k, v in (request.autoscaling or {}).items() if "_count" not in k}
        errors = scaling.apply_policy(cluster, policy)
        if errors:
            raise InvalidInput("The cluster cannot be built as requested.", errors=errors)
        cluster.save()
        _attach(cluster, request.catalog_ids)
        operation = _start(actor, cluster, CREATE_KIND, ClusterStatus.PROVISIONING, "created")
    return cluster, operation


def _locked(cluster: Cluster, *allowed: str, action: str) -> Cluster:
    locked = (
        Cluster.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=cluster.pk)
    )
    if locked.status not in allowed:
        raise Conflict(
            f"The cluster is {locked.status}; it can be {action} when it is {' or '.join(allowed)}."
        )
    return locked


def update_cluster(*, actor: Actor, cluster: Cluster, changes: dict[str, Any]) -> Cluster:
    """Name, auto-suspend, the worker bounds, catalogs and cache change in place (no cloud
    change). New catalogs or another cache reach the agent at once: Trino mounts catalogs
    without a restart, PrestoDB rolls its pods (drain-aware)."""
    changes = dict(changes)
    catalog_ids = changes.pop("catalog_ids", None)
    cache_given = "cache_id" in changes
    cache_id = changes.pop("cache_id", None)
    policy = changes.pop("autoscaling", None)
    with transaction.atomic():
        locked = (
            Cluster.objects.select_for_update(of=("self",))
            .select_related("organization", "compute_plane")
            .get(pk=cluster.pk)
        )
        if locked.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
            raise Conflict(f"The cluster is {locked.status}.")
        name = changes.get("name")
        if name and name != locked.name:
            ensure_name_free(Cluster, locked.organization_id, name)
        errors: dict[str, list[str]] = {}
        _check_bounds(
            locked.workers_desired,
            changes.get("workers_min", locked.workers_min),
            changes.get("workers_max", locked.workers_max),
            errors,
        )
        if changes.get("draining") is True:
            errors["draining"] = ["Start a drain with POST …/drain; it runs as an operation."]
        if errors:
            raise InvalidInput("The change cannot be applied.", errors=errors)
        undrained = changes.get("draining") is False and locked.draining
        before = scaling.policy_of(locked), locked.auto_suspend_minutes, locked.schedules
        for key, value in changes.items():
            setattr(locked, key, value)
        errors = scaling.apply_policy(locked, policy or {})
        if errors:
            raise InvalidInput("The change cannot be applied.", errors=errors)
        # The agent acts on the policy and on auto-suspend: it must see them change.
        now = scaling.policy_of(locked), locked.auto_suspend_minutes, locked.schedules
        republish = now != before
        republish = _attach(locked, catalog_ids) or republish or undrained
        if cache_given and cache_id != locked.cache_id:
            locked.cache = (
                resolve_cache(locked.organization, cache_id, locked.compute_plane)
                if cache_id
                else None
            )
            republish = True
        locked.save()
        if republish:
            desired.publish_plane(locked.compute_plane)
        changed = sorted(changes) + (["catalogs"] if catalog_ids is not None else [])
        changed += ["autoscaling"] if policy is not None else []
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="cluster.updated",
            target=locked,
            data={"changed": changed + (["cache"] if cache_given else [])},
        )
    return locked


def resize_cluster(
    *, actor: Actor, cluster: Cluster, workers: int
) -> tuple[Cluster, Operation | None]:
    """Start a resize; resizing to the current size changes nothing and starts no operation."""
    with transaction.atomic():
        locked = _locked(cluster, ClusterStatus.RUNNING, action="resized")
        if not locked.workers_min <= workers <= locked.workers_max:
            raise InvalidInput(
                "The size is outside the cluster's bounds.",
                errors={
                    "workers": [
                        f"Between min_count ({locked.workers_min}) and max_count "
                        f"({locked.workers_max}); PATCH the bounds first."
                    ]
                },
            )
        if workers == locked.workers_desired:
            return locked, None
        before = locked.workers_desired
        locked.workers_desired = workers
        operation = _start(actor, locked, RESIZE_KIND, ClusterStatus.RESIZING, "resize_requested")
        scaling.record_user_resize(locked, actor, before)
    return locked, operation


AUTOSCALER = Actor.system_actor("autoscaler")


def autoscale_cluster(locked: Cluster, workers: int) -> Operation:
    """Resize for the agent's autoscaler (``decisions.py`` holds the row lock and checked the
    bounds): the same operation as a user's resize — node groups, desired state, wait."""
    locked.workers_desired = workers
    return _start(AUTOSCALER, locked, RESIZE_KIND, ClusterStatus.RESIZING, "autoscaled")


def suspend_cluster(locked: Cluster) -> Operation:
    """Auto-suspend (``decisions.py`` holds the row lock): a stop that ends ``suspended``."""
    return _start(AUTOSCALER, locked, SUSPEND_KIND, ClusterStatus.STOPPING, "idle_suspend")


def stop_cluster(*, actor: Actor, cluster: Cluster) -> tuple[Cluster, Operation]:
    # A failed cluster can be stopped: its node groups go to zero, whatever step failed.
    with transaction.atomic():
        locked = _locked(cluster, ClusterStatus.RUNNING, ClusterStatus.FAILED, action="stopped")
        operation = _start(actor, locked, STOP_KIND, ClusterStatus.STOPPING, "stop_requested")
    return locked, operation


def drain_cluster(*, actor: Actor, cluster: Cluster) -> tuple[Cluster, Operation]:
    """The gateway sends the cluster no new queries; the operation ends when the gateway reports
    it empty (``StatusReport.gateway.drained``). The cluster keeps running."""
    with transaction.atomic():
        locked = _locked(cluster, ClusterStatus.RUNNING, action="drained")
        locked.draining = True
        operation = _start(actor, locked, DRAIN_KIND, ClusterStatus.RUNNING, "drain_requested")
    return locked, operation


def start_cluster(*, actor: Actor, cluster: Cluster) -> tuple[Cluster, Operation]:
    # A failed cluster can be started: the retry re-runs node groups, desired state and the wait.
    with transaction.atomic():
        locked = _locked(
            cluster,
            ClusterStatus.STOPPED,
            ClusterStatus.SUSPENDED,
            ClusterStatus.FAILED,
            action="started",
        )
        locked.draining = False  # a started cluster takes queries again
        operation = _start(actor, locked, START_KIND, ClusterStatus.STARTING, "start_requested")
    return locked, operation


def restart_cluster(*, actor: Actor, cluster: Cluster) -> tuple[Cluster, Operation]:
    with transaction.atomic():
        locked = _locked(cluster, ClusterStatus.RUNNING, action="restarted")
        locked.restart_generation += 1
        operation = _start(
            actor, locked, RESTART_KIND, ClusterStatus.RESTARTING, "restart_requested"
        )
    return locked, operation


def delete_cluster(*, actor: Actor, cluster: Cluster) -> tuple[Cluster, Operation]:
    with transaction.atomic():
        locked = (
            Cluster.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=cluster.pk)
        )
        if locked.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
            raise Conflict(f"The cluster is already {locked.status}.")
        if locked.operation_id is not None:
            # A running create/resize stops where it is; the delete removes what exists.
            Operation.objects.filter(pk=locked.operation_id).exclude(
                status__in=["succeeded", "failed", "canceled"]
            ).update(status="canceled")
        operation = _start(actor, locked, DELETE_KIND, ClusterStatus.DELETING, "delete_requested")
    return locked, operation


# What a failed cluster is brought back to, by the kind of operation that failed: a stop or a
# delete is finished; anything else (create, resize, start, restart) ends with it running.
_RETRY = {
    STOP_KIND: (STOP_KIND, ClusterStatus.STOPPING, "stop_requested"),
    DELETE_KIND: (DELETE_KIND, ClusterStatus.DELETING, "delete_requested"),
}
_RETRY_RUNNING = (START_KIND, ClusterStatus.STARTING, "start_requested")


def retry_failed_clusters(*, plane: Any, actor: Actor) -> list[Operation]:
    """After a repair: every failed cluster on ``plane`` gets the operation that finishes what
    it was asked to do (a failed delete is deleted, a failed stop stopped, the rest started)."""
    operations = []
    failed = (
        Cluster.objects.select_for_update(of=("self",))
        .select_related("organization", "compute_plane__cloud_account", "operation")
        .filter(compute_plane=plane, status=ClusterStatus.FAILED, deleted_at__isnull=True)
        .order_by("id")
    )
    for cluster in failed:
        kind = cluster.operation.kind if cluster.operation is not None else CREATE_KIND
        operations.append(_start(actor, cluster, *_RETRY.get(kind, _RETRY_RUNNING)))
    return operations


def on_plane_repaired(sender: Any, *, plane: Any, actor: Actor, **_: Any) -> None:
    retry_failed_clusters(plane=plane, actor=actor)
