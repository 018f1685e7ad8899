"""The catalogs and managed metastores in a compute plane's desired state.

``controlplane/clusters/desired.py`` builds the whole document; these functions give it the
catalog and metastore parts, in a fixed number of queries however many clusters and catalogs a
plane has. A catalog is in the document when a live cluster on the plane attaches it; a catalog
on a managed metastore is left out (with the cluster's reference to it) until that metastore
runs on the plane, since the agent could not reach it anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from computeplane_agent import contract
from computeplane_agent.connectors import managed_metastore_uri
from controlplane.catalogs.models import (
    CatalogAttachment,
    Metastore,
    MetastoreKind,
    MetastoreStatus,
)
from controlplane.clusters.models import ClusterStatus
from controlplane.computeplanes.models import ComputePlane

# What the RDS reconciler records on a managed metastore once its database exists.
DATABASE_KEYS = ("db_host", "db_port", "db_name", "db_username", "master_secret_arn")
_GONE_CLUSTER = (ClusterStatus.DELETING, ClusterStatus.DELETED)
_GONE_METASTORE = (MetastoreStatus.DELETING, MetastoreStatus.DELETED)


def _warehouse_bucket(plane: ComputePlane) -> str | None:
    return (plane.resources.get("buckets") or {}).get("warehouse") or None


def _runs_on(metastore: Metastore, plane: ComputePlane) -> bool:
    """A managed metastore the agent runs on ``plane`` (its database and warehouse exist)."""
    return (
        metastore.kind == MetastoreKind.MANAGED
        and metastore.compute_plane_id == plane.id
        and _warehouse_bucket(plane) is not None
        and metastore.deleted_at is None
        and metastore.status not in _GONE_METASTORE
        and all(metastore.resources.get(k) not in (None, "") for k in DATABASE_KEYS)
    )


def _reference(
    metastore: Metastore | None, plane: ComputePlane
) -> contract.ThriftMetastore | contract.GlueMetastore | bool | None:
    """The contract's metastore reference; False when the catalog cannot be rendered yet."""
    if metastore is None:
        return None
    if metastore.deleted_at is not None or metastore.status in _GONE_METASTORE:
        return False
    if metastore.kind == MetastoreKind.HIVE:
        return contract.ThriftMetastore(uris=metastore.uri)
    if metastore.kind == MetastoreKind.GLUE:
        return contract.GlueMetastore(
            region=metastore.glue["region"], catalog_id=metastore.glue.get("catalog_id") or None
        )
    if not _runs_on(metastore, plane):
        return False
    return contract.ThriftMetastore(
        uris=managed_metastore_uri(metastore.id), metastore_id=metastore.id
    )


def _attachments(plane: ComputePlane) -> list[CatalogAttachment]:
    return list(
        CatalogAttachment.objects.filter(
            cluster__compute_plane=plane,
            cluster__deleted_at__isnull=True,
            catalog__deleted_at__isnull=True,
        )
        .exclude(cluster__status__in=_GONE_CLUSTER)
        .select_related("catalog", "catalog__metastore")
        .order_by("cluster_id", "catalog__name")
    )


def _secret_ref(value: str | dict[str, str]) -> contract.SecretRef:
    if isinstance(value, str):
        return contract.SecretRef(arn=value)
    return contract.SecretRef(arn=value["arn"], json_key=value.get("json_key"))


def plane_catalogs(
    plane: ComputePlane,
) -> tuple[list[contract.CatalogSpec], dict[str, list[str]]]:
    """The catalog specs of ``plane`` and, per live cluster id, the ids of its catalogs
    (only those in the specs, so the document's references always resolve). One query."""
    specs: dict[str, contract.CatalogSpec] = {}
    skipped: set[str] = set()
    per_cluster: dict[str, list[str]] = defaultdict(list)
    for attachment in _attachments(plane):
        catalog = attachment.catalog
        if catalog.id not in specs and catalog.id not in skipped:
            reference = _reference(catalog.metastore, plane)
            if reference is False:
                skipped.add(catalog.id)
            else:
                assert not isinstance(reference, bool)
                specs[catalog.id] = contract.CatalogSpec(
                    id=catalog.id,
                    name=catalog.name,
                    connector=catalog.connector,
                    version=catalog.version,
                    properties=dict(catalog.properties),
                    secrets={k: _secret_ref(v) for k, v in sorted(catalog.secrets.items())},
                    metastore=reference,
                )
        if catalog.id in specs:
            per_cluster[attachment.cluster_id].append(catalog.id)
    return sorted(specs.values(), key=lambda s: s.name), dict(per_cluster)


def catalog_specs(
    plane: ComputePlane, catalog_ids: Iterable[str] | None = None
) -> list[contract.CatalogSpec]:
    """The catalogs attached to live clusters on ``plane`` (optionally only ``catalog_ids``)."""
    specs, _ = plane_catalogs(plane)
    if catalog_ids is None:
        return specs
    wanted = set(catalog_ids)
    return [s for s in specs if s.id in wanted]


def attached_catalog_ids(plane: ComputePlane) -> dict[str, list[str]]:
    """Per live cluster id on ``plane``, the ids of its catalogs that ``catalog_specs`` lists."""
    return plane_catalogs(plane)[1]


def metastore_specs(plane: ComputePlane) -> list[contract.MetastoreSpec]:
    """The managed metastores the agent should run on ``plane`` (their database exists). One
    query."""
    warehouse_bucket = _warehouse_bucket(plane)
    specs = []
    metastores = Metastore.objects.filter(
        compute_plane=plane, kind=MetastoreKind.MANAGED, deleted_at__isnull=True
    ).exclude(status__in=_GONE_METASTORE)
    for metastore in metastores.order_by("id"):
        if not _runs_on(metastore, plane):
            continue
        r = metastore.resources
        specs.append(
            contract.MetastoreSpec(
                id=metastore.id,
                name=metastore.name,
                version=metastore.version,
                database=contract.MetastoreDatabase(
                    host=r["db_host"],
                    port=int(r["db_port"]),
                    name=r["db_name"],
                    username=r["db_username"],
                    # RDS-managed master secrets are {"username", "password"}.
                    password=contract.SecretRef(arn=r["master_secret_arn"], json_key="password"),
                ),
                warehouse=f"s3://{warehouse_bucket}/warehouse/{metastore.id}",
            )
        )
    return specs
