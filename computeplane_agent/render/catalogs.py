"""Catalog files and statements for both engines, and the Secret behind their credentials.

Secret-backed properties are rendered as ``${ENV:<VAR>}`` references; the value reaches the pod
only through the cluster's ``<prefix>-catalog-secrets`` Secret, which the agent writes from what it
resolved inside the VPC. How each engine gets from reference to value:

- Trino expands ``${ENV:…}`` in catalog properties itself, on every node (also for catalogs made
  by ``CREATE CATALOG``: the reference travels, each node resolves it from its own environment),
  so the files and the statements carry references only.
- PrestoDB (Java) does not expand environment references in catalog files (only the C++ worker
  does; prestodb/presto#20486 is the open request). Its catalog ConfigMap is a template and an
  init container of the same image substitutes the references into a memory-backed emptyDir
  the server reads.

Propagation: a Trino cluster runs with ``catalog.management=dynamic`` and the agent applies a
change with ``DROP CATALOG`` / ``CREATE CATALOG`` through the coordinator, so no pod template
carries catalog content; a PrestoDB pod template carries a checksum of its catalog files, so a
change is a drain-aware rolling restart.

Reading through an Alluxio cache (hive, iceberg and delta_lake catalogs of a cluster with a
``cache``), checked against each engine's documentation (docs/caches.md has the table):
- PrestoDB: the Hadoop file system of its Hive-based connectors is pointed at Alluxio's
  ``ShimFileSystem`` for ``s3://``/``s3a://`` through a ``core-site.xml`` named by
  ``hive.config.resources``, with ``hive.s3-file-system-type=HADOOP_DEFAULT`` so Presto's own S3
  client does not override it. Table locations stay ``s3://…``; reads under a cache mount are
  served by the shared Alluxio cache (Alluxio's "transparent URI"), anything else passes through.
- Trino picks a file system by the location's scheme only (``FileSystemModule``): its Alluxio
  file system (``fs.alluxio.enabled=true``, client settings in
  ``/opt/alluxio/conf/alluxio-site.properties``) is bound to ``alluxio://`` and nothing else, and
  Trino 470+ has no Hadoop S3 file system to shim. So ``s3://`` tables never reach the shared
  cache on Trino. What does serve them is Trino's own *file system cache* (``fs.cache.enabled``,
  the Alluxio caching libraries on each node's local disk): every cacheable catalog of a cluster
  with a cache enables it, in a directory of its own (``fs.cache.directories``; one cache
  manager per catalog, so never shared) with an equal share of the disk
  (``fs.cache.max-disk-usage-percentages``, together at most ``FS_CACHE_DISK_PERCENT``).
  ``alluxio://`` locations under a cache mount are read through the shared cache as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from computeplane_agent.connectors import engine_properties, secret_property_names
from computeplane_agent.contract import CacheSpec, CatalogSpec
from computeplane_agent.render.alluxio import MASTER_RPC_PORT, client_properties, master_hostname
from computeplane_agent.render.objects import KubeObject, hadoop_xml, properties, secret
from computeplane_agent.versions import Engine

# Connectors whose data is files in object storage, which a cache can serve.
CACHEABLE_CONNECTORS = frozenset({"hive", "iceberg", "delta_lake"})
ALLUXIO_CONF_DIR = "/opt/alluxio/conf"
# Trino's file system cache: one directory per catalog under this emptyDir, and the share of
# the node's disk all of a cluster's cached catalogs may fill together.
TRINO_FS_CACHE_DIR = "/var/lib/lakeplane/fs-cache"
FS_CACHE_DISK_PERCENT = 80
PRESTO_HADOOP_DIR = "/opt/presto-server/etc/hadoop"


def catalog_secret_name(prefix: str) -> str:
    return f"{prefix}-catalog-secrets"


def secret_env(catalog_name: str, key: str) -> str:
    """The environment variable holding one secret of one catalog (``CATALOG_PG_CONNECTION_…``)."""
    clean = "".join(ch if ch.isalnum() else "_" for ch in key).upper()
    return f"CATALOG_{catalog_name.upper()}_{clean}"


def cached(spec: CatalogSpec, cache: CacheSpec | None) -> bool:
    """Whether the catalog reads through the cluster's cache (its data is files)."""
    return cache is not None and spec.connector in CACHEABLE_CONNECTORS


def cached_count(catalogs: Iterable[CatalogSpec], cache: CacheSpec | None) -> int:
    return sum(1 for c in catalogs if cached(c, cache))


def trino_fs_cache_directory(catalog_name: str) -> str:
    return f"{TRINO_FS_CACHE_DIR}/{catalog_name}"


def catalog_properties(
    spec: CatalogSpec, engine: Engine, cache: CacheSpec | None, cached_catalogs: int = 1
) -> dict[str, str]:
    """One catalog's properties for ``engine``; secrets as ``${ENV:…}`` references only.

    ``cached_catalogs`` is how many of the cluster's catalogs read through its cache: on Trino
    they share the node's disk for the file system cache equally.
    """
    values = engine_properties(spec, engine)
    for key, name in secret_property_names(spec, engine).items():
        values[name] = "${ENV:" + secret_env(spec.name, key) + "}"
    if cached(spec, cache):
        if engine == "presto":
            values["hive.config.resources"] = f"{PRESTO_HADOOP_DIR}/core-site.xml"
            values["hive.s3-file-system-type"] = "HADOOP_DEFAULT"
        else:
            values["fs.alluxio.enabled"] = "true"  # alluxio:// locations: the shared cache
            values["fs.cache.enabled"] = "true"  # every other location: the node-local cache
            values["fs.cache.directories"] = trino_fs_cache_directory(spec.name)
            share = max(1, FS_CACHE_DISK_PERCENT // max(1, cached_catalogs))
            values["fs.cache.max-disk-usage-percentages"] = str(share)
    return values


def catalog_files(
    catalogs: Iterable[CatalogSpec], engine: Engine, cache: CacheSpec | None
) -> dict[str, str]:
    listed = list(catalogs)
    count = cached_count(listed, cache)
    return {
        f"{c.name}.properties": properties(catalog_properties(c, engine, cache, count))
        for c in listed
    }


def cache_files(engine: Engine, cache: CacheSpec | None) -> dict[str, str]:
    """Pod-level client configuration of the cache a cluster reads through (none without one)."""
    if cache is None:
        return {}
    if engine == "trino":
        return {"alluxio-site.properties": properties(client_properties(cache.id))}
    address = f"{master_hostname(cache.id)}:{MASTER_RPC_PORT}"
    return {
        "core-site.xml": hadoop_xml(
            {
                "fs.s3.impl": "alluxio.hadoop.ShimFileSystem",
                "fs.s3a.impl": "alluxio.hadoop.ShimFileSystem",
                "fs.alluxio.impl": "alluxio.hadoop.FileSystem",
                "alluxio.master.rpc.addresses": address,
            }
        )
    }


def cache_mount_dir(engine: Engine) -> str:
    return ALLUXIO_CONF_DIR if engine == "trino" else PRESTO_HADOOP_DIR


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def create_catalog_statement(
    spec: CatalogSpec, cache: CacheSpec | None, cached_catalogs: int = 1
) -> str:
    """Trino's ``CREATE CATALOG``: every value a quoted string, secrets as references."""
    values = catalog_properties(spec, "trino", cache, cached_catalogs)
    connector = values.pop("connector.name")
    pairs = ", ".join(f"{_sql_identifier(k)} = {_sql_string(v)}" for k, v in values.items())
    statement = f"CREATE CATALOG {_sql_identifier(spec.name)} USING {connector}"
    return f"{statement} WITH ({pairs})" if pairs else statement


def drop_catalog_statement(name: str) -> str:
    return f"DROP CATALOG IF EXISTS {_sql_identifier(name)}"


def catalog_secret_values(
    catalogs: Sequence[CatalogSpec], resolved: Mapping[tuple[str, str], str]
) -> dict[str, str]:
    """Environment variable → value for the catalogs' secrets that were resolved
    (``resolved`` is keyed by (catalog id, secret key))."""
    return {
        secret_env(c.name, key): resolved[(c.id, key)]
        for c in catalogs
        for key in c.secrets
        if (c.id, key) in resolved
    }


def catalog_secret(prefix: str, labels: dict[str, str], values: dict[str, str]) -> KubeObject:
    return secret(catalog_secret_name(prefix), labels, values)


# PrestoDB: replace each ${ENV:NAME} with the variable's value. awk builds the output left to
# right, so a value that itself looks like a reference is never expanded again; values are
# taken from the environment, never from the command line.
PRESTO_SUBSTITUTE_SCRIPT = r"""set -eu
for template in /catalog-template/*.properties; do
  [ -e "$template" ] || continue
  awk '{
    out = ""; rest = $0
    while (match(rest, /\$\{ENV:[A-Za-z_][A-Za-z0-9_]*\}/)) {
      out = out substr(rest, 1, RSTART - 1) ENVIRON[substr(rest, RSTART + 6, RLENGTH - 7)]
      rest = substr(rest, RSTART + RLENGTH)
    }
    print out rest
  }' "$template" > "$CATALOG_DIR/$(basename "$template")"
done
"""
# Trino: seed the coordinator's writable catalog store with the current catalogs at start-up;
# later changes arrive as CREATE/DROP CATALOG.
TRINO_SEED_SCRIPT = r"""set -eu
for template in /catalog-template/*.properties; do
  [ -e "$template" ] || continue
  cp "$template" "$CATALOG_DIR/"
done
"""
