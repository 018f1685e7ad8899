"""The write path for Alluxio caches: plain functions that check rules, write, audit.

Create, update and delete run in one transaction each, take the cache's row lock, start the
operation that makes the change real (``workflows.py``) and write an audit event.
:func:`resolve_cache` is how the clusters app attaches a cluster to a cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from computeplane_agent import contract
from computeplane_agent.instance_types import UnknownInstanceType, instance_type
from computeplane_agent.versions import (
    DEFAULT_COMPONENT_VERSIONS,
    UnsupportedVersion,
    component_release,
)
from controlplane.caching import validation
from controlplane.caching.models import Cache, CacheStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.services import ensure_operable, lock_plane_for_new
from controlplane.core import workflows
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput, NotFound
from controlplane.core.models import Operation
from controlplane.core.naming import ensure_name_free
from controlplane.tenancy.models import Organization

CREATE_KIND = "cache.create"
UPDATE_KIND = "cache.update"
DELETE_KIND = "cache.delete"

# Fields a PATCH may change; the tier and the instance type are fixed for a cache's life (a
# managed node group cannot change its instance types), so they need a new cache.
UPDATABLE = ("name", "version", "workers", "size_gb_per_worker", "mounts", "policies")
# A cluster may read through a cache that serves (ready, or applying a change).
ATTACHABLE = (CacheStatus.READY, CacheStatus.UPDATING)
_FINISHED = ("succeeded", "failed", "canceled")


@dataclass(frozen=True)
class CacheRequest:
    name: str
    compute_plane: ComputePlane
    workers: int
    medium: str
    size_gb_per_worker: int
    mounts: list[dict[str, str]] = field(default_factory=list)
    policies: list[Any] = field(default_factory=list)
    worker_instance_type: str = ""
    version: str = ""


def _check_version(version: str, errors: validation.Errors) -> str:
    chosen = version or DEFAULT_COMPONENT_VERSIONS["alluxio"]
    try:
        component_release("alluxio", chosen)
    except UnsupportedVersion as exc:
        errors["version"] = [str(exc)]
    return chosen


def _check_shape(
    *,
    medium: str,
    instance: str,
    workers: int,
    size_gb: int,
    mounts: list[dict[str, str]],
    policies: list[Any],
    errors: validation.Errors,
) -> dict[str, Any]:
    """Validates a cache's shape; returns the policies as stored (contract CachePolicies)."""
    validation.check_workers(workers, errors)
    if medium not in validation.MEDIUMS:
        errors["medium"] = [f"One of {', '.join(validation.MEDIUMS)}."]
    try:
        itype = instance_type(instance)
    except UnknownInstanceType:
        errors["worker_instance_type"] = [f"Unknown instance type {instance!r}."]
    else:
        if medium in validation.MEDIUMS:
            validation.check_size(medium, itype, size_gb, errors)
    validation.check_mounts(mounts, errors)
    parsed = validation.parse_policies(policies, mounts, errors)
    return parsed.model_dump(mode="json")


def validate_request(request: CacheRequest) -> tuple[str, str, dict[str, Any]]:
    """Field errors as one 422; returns the version, instance type and stored policies."""
    errors: validation.Errors = {}
    version = _check_version(request.version, errors)
    instance = request.worker_instance_type or validation.DEFAULT_INSTANCE_TYPES.get(
        request.medium, ""
    )
    policies = _check_shape(
        medium=request.medium,
        instance=instance,
        workers=request.workers,
        size_gb=request.size_gb_per_worker,
        mounts=request.mounts,
        policies=request.policies,
        errors=errors,
    )
    if errors:
        raise InvalidInput("The cache cannot be built as requested.", errors=errors)
    return version, instance, policies


def _start(
    actor: Actor, cache: Cache, kind: str, status: str, action: str, **data: Any
) -> Operation:
    # Teardown treats a node group that is already gone as deleted: a degraded plane allows it.
    ensure_operable(
        cache.compute_plane,
        action=f"{kind.split('.')[1]} the cache",
        allow_degraded=kind == DELETE_KIND,
    )
    return workflows.start_resource_operation(
        actor=actor, resource=cache, kind=kind, action=f"cache.{action}", status=status, data=data
    )


def create_cache(
    *, actor: Actor, organization: Organization, request: CacheRequest
) -> tuple[Cache, Operation]:
    version, instance, policies = validate_request(request)
    with transaction.atomic():
        plane = lock_plane_for_new(
            Cache,
            organization,
            request.name,
            request.compute_plane,
            needs_ready="caches can be created once it is ready",
        )
        cache = Cache.objects.create(
            organization=organization,
            compute_plane=plane,
            name=request.name,
            version=version,
            worker_instance_type=instance,
            workers=request.workers,
            medium=request.medium,
            size_gb_per_worker=request.size_gb_per_worker,
            mounts=[{"path": m["path"], "uri": m["uri"]} for m in request.mounts],
            policies=policies,
        )
        operation = _start(actor, cache, CREATE_KIND, CacheStatus.PROVISIONING, "created")
    return cache, operation


def _locked(cache: Cache) -> Cache:
    return (
        Cache.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=cache.pk)
    )


def update_cache(
    *, actor: Actor, cache: Cache, changes: dict[str, Any]
) -> tuple[Cache, Operation | None]:
    """Workers, size, mounts, policies, version or name; None as the operation if nothing
    changed. Anything that reaches the compute plane runs as a ``cache.update`` operation."""
    fixed = sorted(set(changes) - set(UPDATABLE))
    if fixed:
        raise InvalidInput(
            "These fields are fixed for a cache's life; create a new cache to change them.",
            errors={key: ["Cannot be changed."] for key in fixed},
        )
    with transaction.atomic():
        locked = _locked(cache)
        if locked.status not in (CacheStatus.READY, CacheStatus.FAILED):
            raise Conflict(
                f"The cache is {locked.status}; it can be changed when it is ready or failed."
            )
        current = {key: getattr(locked, key) for key in UPDATABLE}
        # Compared in their stored (contract) form: interleaving the kinds differently is no change.
        current["policies"] = contract.CachePolicies.model_validate(
            locked.policies or {}
        ).model_dump(mode="json")
        merged = {**current, "policies": validation.policies_as_list(locked.policies), **changes}
        errors: validation.Errors = {}
        version = _check_version(merged["version"], errors)
        policies = _check_shape(
            medium=locked.medium,
            instance=locked.worker_instance_type,
            workers=merged["workers"],
            size_gb=merged["size_gb_per_worker"],
            mounts=merged["mounts"],
            policies=merged["policies"],
            errors=errors,
        )
        if errors:
            raise InvalidInput("The change cannot be applied.", errors=errors)
        wanted = {
            **merged,
            "version": version,
            "mounts": [{"path": m["path"], "uri": m["uri"]} for m in merged["mounts"]],
            "policies": policies,
        }
        changed = sorted(k for k in UPDATABLE if wanted[k] != current[k])
        if not changed:
            return locked, None
        if "name" in changed:
            ensure_name_free(Cache, locked.organization_id, wanted["name"])
        for key in changed:
            setattr(locked, key, wanted[key])
        operation = _start(
            actor, locked, UPDATE_KIND, CacheStatus.UPDATING, "updated", changed=changed
        )
    return locked, operation


def live_clusters(cache: Cache) -> list[str]:
    """Ids of the clusters that read through ``cache`` and are not deleted."""
    return list(
        cache.clusters.filter(deleted_at__isnull=True).order_by("id").values_list("id", flat=True)
    )


def delete_cache(*, actor: Actor, cache: Cache) -> tuple[Cache, Operation]:
    with transaction.atomic():
        locked = _locked(cache)
        if locked.status in (CacheStatus.DELETING, CacheStatus.DELETED):
            raise Conflict(f"The cache is already {locked.status}.")
        users = live_clusters(locked)
        if users:
            raise Conflict(
                f"The cache is used by {len(users)} cluster(s); delete them or detach the "
                "cache from them first.",
                errors={"clusters": users},
            )
        if locked.operation_id is not None:
            # A running create/update stops where it is; the delete removes what exists.
            Operation.objects.filter(pk=locked.operation_id).exclude(status__in=_FINISHED).update(
                status="canceled"
            )
        operation = _start(actor, locked, DELETE_KIND, CacheStatus.DELETING, "delete_requested")
    return locked, operation


def resolve_cache(organization: Organization, cache_id: str, compute_plane: ComputePlane) -> Cache:
    """The cache a cluster on ``compute_plane`` asks to read through.

    404 for an unknown id or another organization's cache (the same answer); 422 when it is on
    another compute plane; 409 when it does not serve (still provisioning, failed, deleting).
    Inside a transaction the cache's row is locked, so a concurrent delete waits for the
    cluster's write and then sees the cluster (and answers 409).
    """
    caches = Cache.objects.filter(organization=organization, deleted_at__isnull=True)
    if transaction.get_connection().in_atomic_block:
        caches = caches.select_for_update(of=("self",))
    cache = caches.filter(pk=cache_id).first()
    if cache is None:
        raise NotFound("No such cache.", errors={"cache": [f"No cache {cache_id} here."]})
    if cache.compute_plane_id != compute_plane.pk:
        raise InvalidInput(
            "The cache is on another compute plane.",
            errors={
                "cache": [
                    f"Cache {cache.id} is on compute plane {cache.compute_plane_id}; a cluster "
                    f"on {compute_plane.pk} can only read through a cache on its own plane."
                ]
            },
        )
    if cache.status not in ATTACHABLE:
        raise Conflict(
            f"The cache is {cache.status}; clusters can use it once it is ready.",
            errors={"cache": [f"Cache {cache.id} is {cache.status}."]},
        )
    return cache
