"""The write path for metastores and catalogs: plain functions that check rules, write, audit.

A catalog change reaches every compute plane with a live cluster that attaches it: the change,
the attachments going back to ``pending`` and the new desired state of each such plane are one
transaction, so the desired state never lags a committed catalog (long polls are woken after
commit by ``publish_desired_state``). One publish per compute plane, whatever the number of
clusters on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from computeplane_agent import connectors
from computeplane_agent.versions import UnsupportedVersion, component_release
from controlplane.catalogs.models import (
    Catalog,
    CatalogAttachment,
    Metastore,
    MetastoreKind,
    MetastoreStatus,
    PropagationStatus,
)
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.computeplanes.services import lock_plane_for_new
from controlplane.core import audit, workflows
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput, NotFound
from controlplane.core.models import Operation
from controlplane.core.naming import ensure_name_free, name_taken
from controlplane.tenancy.models import Organization

METASTORE_CREATE_KIND = "metastore.create"
METASTORE_DELETE_KIND = "metastore.delete"

CATALOG_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
THRIFT_URIS_RE = re.compile(
    r"^thrift://[A-Za-z0-9.-]+:[0-9]{1,5}(,thrift://[A-Za-z0-9.-]+:[0-9]{1,5})*$"
)
AWS_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
AWS_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")

# A cluster whose catalogs matter: it is, or will again be, in its plane's desired state.
GONE_CLUSTER = (ClusterStatus.DELETING, ClusterStatus.DELETED)
LIVE_CLUSTER = Q(cluster__deleted_at__isnull=True) & ~Q(cluster__status__in=GONE_CLUSTER)
GONE_METASTORE = (MetastoreStatus.DELETING, MetastoreStatus.DELETED)


# --- catalogs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogRequest:
    name: str
    connector: str
    metastore: Metastore | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)


def _check_catalog(request: CatalogRequest) -> tuple[dict[str, str], dict[str, Any]]:
    """422 with field errors, or the properties and secrets as stored."""
    errors: dict[str, list[str]] = {}
    if not CATALOG_NAME_RE.match(request.name):
        errors["name"] = [
            "A Presto identifier: a lowercase letter, then lowercase letters, digits or "
            "underscores (at most 63)."
        ]
    if request.metastore is not None and request.metastore.status in GONE_METASTORE:
        errors["metastore"] = [f"Metastore {request.metastore.id} is {request.metastore.status}."]
    errors.update(
        connectors.validate_catalog(
            request.connector,
            request.properties,
            request.secrets,
            has_metastore=request.metastore is not None,
        )
    )
    if errors:
        raise InvalidInput("The catalog is not valid.", errors=errors)
    properties = connectors.normalize_properties(request.connector, request.properties)
    secrets = {k: v if isinstance(v, str) else dict(v) for k, v in request.secrets.items()}
    return properties, secrets


def create_catalog(*, actor: Actor, organization: Organization, request: CatalogRequest) -> Catalog:
    properties, secrets = _check_catalog(request)
    try:
        with transaction.atomic():
            ensure_name_free(Catalog, organization.pk, request.name)
            catalog = Catalog.objects.create(
                organization=organization,
                name=request.name,
                connector=request.connector,
                metastore=request.metastore,
                properties=properties,
                secrets=secrets,
            )
            audit.record(
                actor=actor,
                organization=organization,
                action="catalog.created",
                target=catalog,
                # Keys only: values may be hostnames users consider private; ARNs are not values.
                data={"connector": catalog.connector, "properties": sorted(properties)},
            )
    except IntegrityError:  # a concurrent create won the name
        raise name_taken(request.name) from None
    return catalog


def _planes_attaching(catalog_ids: list[str]) -> list[ComputePlane]:
    return list(
        ComputePlane.objects.filter(
            clusters__catalog_attachments__catalog_id__in=catalog_ids,
            clusters__deleted_at__isnull=True,
        )
        .exclude(clusters__status__in=GONE_CLUSTER)
        .distinct()
        .order_by("id")
    )


def publish_planes(planes: list[ComputePlane]) -> None:
    from controlplane.clusters.desired import publish_plane

    for plane in planes:
        publish_plane(plane)


def update_catalog(*, actor: Actor, catalog: Catalog, changes: Mapping[str, Any]) -> Catalog:
    """``changes``: any of name, metastore, properties, secrets (the last two replace the whole
    mapping). The version grows only when something changed, and then every attached live
    cluster's compute plane gets a new desired state."""
    with transaction.atomic():
        locked = Catalog.objects.select_for_update().get(pk=catalog.pk)
        if locked.deleted_at is not None:
            raise NotFound("No such catalog.")
        if "connector" in changes and changes["connector"] != locked.connector:
            raise InvalidInput(
                "The connector cannot change.",
                errors={"connector": ["Create a new catalog for another connector."]},
            )
        request = CatalogRequest(
            name=changes.get("name", locked.name),
            connector=locked.connector,
            metastore=changes.get("metastore", locked.metastore),
            properties=changes.get("properties", locked.properties),
            secrets=changes.get("secrets", locked.secrets),
        )
        properties, secrets = _check_catalog(request)
        new = {
            "name": request.name,
            "metastore_id": request.metastore.pk if request.metastore else None,
            "properties": properties,
            "secrets": secrets,
        }
        changed = sorted(k for k, v in new.items() if getattr(locked, k) != v)
        if not changed:
            return locked
        if "name" in changed:
            ensure_name_free(Catalog, locked.organization_id, request.name, exclude=locked.pk)
        for key, value in new.items():
            setattr(locked, key, value)
        locked.version += 1
        locked.save()
        CatalogAttachment.objects.filter(catalog=locked).update(
            status=PropagationStatus.PENDING, message=""
        )
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="catalog.updated",
            target=locked,
            data={"changed": [k.removesuffix("_id") for k in changed], "version": locked.version},
        )
        publish_planes(_planes_attaching([locked.pk]))
    return locked


def catalog_in_use(catalog: Catalog) -> list[str]:
    return list(
        CatalogAttachment.objects.filter(LIVE_CLUSTER, catalog=catalog)
        .order_by("cluster_id")
        .values_list("cluster_id", flat=True)
    )


def delete_catalog(*, actor: Actor, catalog: Catalog) -> None:
    with transaction.atomic():
        locked = Catalog.objects.select_for_update().get(pk=catalog.pk)
        if locked.deleted_at is not None:
            raise NotFound("No such catalog.")
        clusters = catalog_in_use(locked)
        if clusters:
            raise Conflict(
                f"The catalog is attached to {len(clusters)} cluster(s); detach it first.",
                errors={"clusters": clusters},
            )
        locked.deleted_at = timezone.now()
        locked.save(update_fields=["deleted_at", "updated_at"])
        # Attachments of deleted clusters only; nothing renders them any more.
        CatalogAttachment.objects.filter(catalog=locked).delete()
        audit.record(
            actor=actor, organization=locked.organization, action="catalog.deleted", target=locked
        )


# --- the clusters app's side: which catalogs a cluster mounts -------------------------------------


def resolve_catalogs(organization: Organization, ids: list[str]) -> list[Catalog]:
    """The org's live catalogs by id, in the given order; 404 (as for a missing one) for an id
    of another organization."""
    unique = list(dict.fromkeys(ids))
    found = {
        c.pk: c
        for c in Catalog.objects.filter(
            organization=organization, pk__in=unique, deleted_at__isnull=True
        ).select_related("metastore")
    }
    missing = [i for i in unique if i not in found]
    if missing:
        raise NotFound(
            "No such catalog.", errors={"catalogs": [f"No catalog {i} here." for i in missing]}
        )
    return [found[i] for i in unique]


def set_cluster_catalogs(cluster: Cluster, catalogs: list[Catalog]) -> bool:
    """Make ``catalogs`` exactly the ones ``cluster`` mounts; True when that changed anything.

    A catalog on a managed metastore of another compute plane cannot be mounted: the metastore
    is only reachable inside its own plane (422).
    """
    foreign = [
        c.id
        for c in catalogs
        if c.metastore is not None
        and c.metastore.kind == MetastoreKind.MANAGED
        and c.metastore.compute_plane_id != cluster.compute_plane_id
    ]
    if foreign:
        raise InvalidInput(
            "A managed metastore serves its own compute plane only.",
            errors={
                "catalogs": [
                    f"{c} uses a managed metastore on another compute plane." for c in foreign
                ]
            },
        )
    wanted = {c.pk for c in catalogs}
    existing = set(
        CatalogAttachment.objects.filter(cluster=cluster).values_list("catalog_id", flat=True)
    )
    removed = existing - wanted
    added = wanted - existing
    if removed:
        CatalogAttachment.objects.filter(cluster=cluster, catalog_id__in=removed).delete()
    if added:
        CatalogAttachment.objects.bulk_create(
            CatalogAttachment(
                catalog_id=catalog_id, cluster=cluster, organization_id=cluster.organization_id
            )
            for catalog_id in sorted(added)
        )
    return bool(removed or added)


# --- metastores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetastoreRequest:
    name: str
    compute_plane: ComputePlane
    kind: str
    uri: str = ""
    glue: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""


def _check_metastore(request: MetastoreRequest) -> tuple[str, dict[str, str], str]:
    """422 for bad input; the uri, glue settings and version as stored."""
    errors: dict[str, list[str]] = {}
    uri, glue, version = "", {}, ""
    if request.kind == MetastoreKind.HIVE:
        uri = request.uri.strip()
        if not uri:
            errors["uri"] = ["Required for a hive metastore: thrift://host:9083[,thrift://…]."]
        elif not THRIFT_URIS_RE.match(uri) or any(
            not 0 < int(part.rsplit(":", 1)[1]) < 65536 for part in uri.split(",")
        ):
            errors["uri"] = ["Thrift URIs: thrift://host:port, comma separated for failover."]
    elif request.uri:
        errors["uri"] = [f"Only a hive metastore takes a uri, not {request.kind}."]
    if request.kind == MetastoreKind.GLUE:
        region = str(request.glue.get("region") or "")
        catalog_id = request.glue.get("catalog_id")
        if not AWS_REGION_RE.match(region):
            errors["glue.region"] = ["An AWS region such as eu-west-1."]
        if catalog_id not in (None, "") and not AWS_ACCOUNT_RE.match(str(catalog_id)):
            errors["glue.catalog_id"] = ["The Glue catalog's AWS account id (12 digits)."]
        extra = set(request.glue) - {"region", "catalog_id"}
        if extra:
            errors["glue"] = [f"Unknown keys {sorted(extra)}."]
        glue = {"region": region, **({"catalog_id": str(catalog_id)} if catalog_id else {})}
    elif request.glue:
        errors["glue"] = [f"Only a glue metastore takes glue settings, not {request.kind}."]
    if request.kind == MetastoreKind.MANAGED:
        try:
            version = component_release("hive-metastore", request.version or None).version
        except UnsupportedVersion as exc:
            errors["version"] = [str(exc)]
    elif request.version:
        errors["version"] = ["Only a managed metastore has a version."]
    if errors:
        raise InvalidInput("The metastore is not valid.", errors=errors)
    return uri, glue, version


def create_metastore(
    *, actor: Actor, organization: Organization, request: MetastoreRequest
) -> tuple[Metastore, Operation | None]:
    """hive and glue are ready at once; managed starts ``metastore.create`` (RDS + agent)."""
    uri, glue, version = _check_metastore(request)
    managed = request.kind == MetastoreKind.MANAGED
    with transaction.atomic():
        plane = lock_plane_for_new(
            Metastore,
            organization,
            request.name,
            request.compute_plane,
            needs_ready="a managed metastore needs it ready" if managed else None,
        )
        metastore = Metastore.objects.create(
            organization=organization,
            compute_plane=plane,
            name=request.name,
            kind=request.kind,
            uri=uri,
            glue=glue,
            version=version,
            status=MetastoreStatus.PROVISIONING if managed else MetastoreStatus.READY,
        )
        audited = {"kind": metastore.kind, "compute_plane": plane.id}
        if not managed:
            audit.record(
                actor=actor,
                organization=organization,
                action="metastore.created",
                target=metastore,
                data=audited,
            )
            return metastore, None
        operation = workflows.start_resource_operation(
            actor=actor,
            resource=metastore,
            kind=METASTORE_CREATE_KIND,
            action="metastore.created",
            data=audited,
        )
    return metastore, operation


def update_metastore(
    *, actor: Actor, metastore: Metastore, changes: Mapping[str, Any]
) -> Metastore:
    """Name; uri (hive) and glue settings (glue) — republished to planes whose clusters use it.
    A managed metastore's version is fixed in this release (its schema would need an upgrade)."""
    with transaction.atomic():
        locked = Metastore.objects.select_for_update().get(pk=metastore.pk)
        if locked.status in GONE_METASTORE:
            raise Conflict(f"The metastore is {locked.status}.")
        if "version" in changes and changes["version"] not in ("", locked.version):
            raise InvalidInput(
                "The version cannot change.",
                errors={"version": ["Upgrading a managed metastore's schema is not supported."]},
            )
        request = MetastoreRequest(
            name=changes.get("name", locked.name),
            compute_plane=locked.compute_plane,
            kind=locked.kind,
            uri=changes.get("uri", locked.uri),
            glue=changes.get("glue", locked.glue),
            version=locked.version,
        )
        uri, glue, _ = _check_metastore(request)
        new = {"name": request.name, "uri": uri, "glue": glue}
        changed = sorted(k for k, v in new.items() if getattr(locked, k) != v)
        if not changed:
            return locked
        if "name" in changed:
            ensure_name_free(Metastore, locked.organization_id, request.name, exclude=locked.pk)
        for key, value in new.items():
            setattr(locked, key, value)
        locked.save()
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="metastore.updated",
            target=locked,
            data={"changed": changed},
        )
        if set(changed) & {"uri", "glue"}:
            # Every catalog on it changes what its clusters render: a new catalog version.
            catalog_ids = list(
                Catalog.objects.filter(metastore=locked, deleted_at__isnull=True).values_list(
                    "pk", flat=True
                )
            )
            _bump_catalogs(catalog_ids)
            publish_planes(_planes_attaching(catalog_ids))
    return locked


def _bump_catalogs(catalog_ids: list[str]) -> None:
    from django.db.models import F

    if not catalog_ids:
        return
    Catalog.objects.filter(pk__in=catalog_ids).update(
        version=F("version") + 1, updated_at=timezone.now()
    )
    CatalogAttachment.objects.filter(catalog_id__in=catalog_ids).update(
        status=PropagationStatus.PENDING, message=""
    )


def metastore_in_use(metastore: Metastore) -> list[str]:
    return list(
        Catalog.objects.filter(metastore=metastore, deleted_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )


def delete_metastore(*, actor: Actor, metastore: Metastore) -> tuple[Metastore, Operation | None]:
    """409 while a live catalog uses it. hive/glue go at once; managed starts
    ``metastore.delete`` (agent objects, then the RDS instance)."""
    with transaction.atomic():
        locked = (
            Metastore.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=metastore.pk)
        )
        if locked.status in GONE_METASTORE:
            raise Conflict(f"The metastore is already {locked.status}.")
        catalogs = metastore_in_use(locked)
        if catalogs:
            raise Conflict(
                f"The metastore is used by {len(catalogs)} catalog(s); delete them first.",
                errors={"catalogs": catalogs},
            )
        operation = None
        if locked.kind == MetastoreKind.MANAGED:
            if locked.operation_id is not None:
                # A running create stops where it is; the delete removes what exists.
                Operation.objects.filter(pk=locked.operation_id).exclude(
                    status__in=["succeeded", "failed", "canceled"]
                ).update(status="canceled")
            locked.status = MetastoreStatus.DELETING
            operation = workflows.start_operation(
                actor=actor,
                organization=locked.organization,
                kind=METASTORE_DELETE_KIND,
                target=locked,
            )
            locked.operation = operation
        else:
            locked.status = MetastoreStatus.DELETED
            locked.deleted_at = timezone.now()
        locked.save()
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="metastore.delete_requested" if operation else "metastore.deleted",
            target=locked,
            data={"operation": operation.id} if operation else {},
        )
    return locked, operation
