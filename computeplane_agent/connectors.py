"""The connector registry: one table of connector types and their properties, for both engines.

Catalogs store engine-neutral property keys; this table says what each key is called on PrestoDB
and on Trino (``None``: that engine has no such setting), its type, whether it is required, its
default and whether it is a credential. The control plane validates catalogs against it and
serves it at ``GET /api/v1/connectors`` (the console builds its forms from that); the agent
renders each engine's catalog file from it. Plain Python, no Django: both sides import it.

Credentials never sit in ``properties``: they are given under ``secrets`` as Secrets Manager ARNs
in the customer's account and the agent resolves them inside the VPC (DESIGN.md "Data
separation"), so :func:`engine_properties` renders everything but them.

Metastore-backed connectors (hive, iceberg, delta_lake) take their metastore from the catalog's
``metastore`` (a managed, external Thrift or Glue metastore); the metastore properties themselves
(``hive.metastore.uri``, ``hive.metastore``, ``iceberg.catalog.type``, …) cannot be set by hand,
so a catalog cannot point one engine at a different metastore than the other.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from computeplane_agent.contract import (
    WORKLOAD_NAMESPACE,
    CatalogSpec,
    GlueMetastore,
    ThriftMetastore,
)

Engine = Literal["presto", "trino"]
ENGINES: tuple[Engine, ...] = ("presto", "trino")
ENGINE_TITLES: dict[Engine, str] = {"presto": "PrestoDB", "trino": "Trino"}
PropertyType = Literal["string", "integer", "boolean", "duration", "data_size", "enum", "uri"]

# A Secrets Manager secret ARN in any partition: ``arn:aws:secretsmanager:eu-west-1:123…:secret:n``.
SECRET_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_DURATION_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h|d)$")
_DATA_SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(B|kB|MB|GB|TB|PB)$")
_INTEGER_RE = re.compile(r"^-?[0-9]+$")

# The port of every Hive metastore (the Thrift default); the agent's Service listens on it.
METASTORE_PORT = 9083


def metastore_service_name(metastore_id: str) -> str:
    """The Kubernetes Service of a managed metastore (``ms_ab12`` → ``lp-ms-ab12``)."""
    return "lp-" + metastore_id.replace("_", "-")


def managed_metastore_uri(metastore_id: str) -> str:
    """The Thrift URI clusters use to reach a managed metastore inside the compute plane."""
    service = metastore_service_name(metastore_id)
    return f"thrift://{service}.{WORKLOAD_NAMESPACE}.svc:{METASTORE_PORT}"


@dataclass(frozen=True)
class Property:
    key: str  # engine-neutral; what catalogs store
    type: PropertyType
    description: str
    presto: str | None  # the property's name on PrestoDB; None: not supported there
    trino: str | None
    required: bool = False
    default: str | None = None
    credential: bool = False
    values: tuple[str, ...] = ()  # enum only
    schemes: tuple[str, ...] = ()  # uri only: accepted prefixes

    def engine_name(self, engine: Engine) -> str | None:
        return self.presto if engine == "presto" else self.trino


@dataclass(frozen=True)
class Connector:
    name: str
    title: str
    presto: str  # ``connector.name`` on PrestoDB
    trino: str  # ``connector.name`` on Trino
    # "hive": Hive metastore properties; "iceberg": those plus iceberg.catalog.type; None: none.
    metastore: Literal["hive", "iceberg"] | None = None
    properties: tuple[Property, ...] = field(default_factory=tuple)

    @property
    def uses_metastore(self) -> bool:
        return self.metastore is not None

    def connector_name(self, engine: Engine) -> str:
        return self.presto if engine == "presto" else self.trino

    def property(self, key: str) -> Property | None:
        return next((p for p in self.properties if p.key == key), None)


# --- property building blocks -------------------------------------------------------------------


def _s3_properties() -> tuple[Property, ...]:
    """Object storage credentials and endpoint. PrestoDB reads them as ``hive.s3.*`` for every
    lake connector; Trino's native S3 file system reads ``s3.*``. Without keys the pods' IAM
    role is used, which is the recommended way in a compute plane."""
    return (
        Property(
            "s3.aws-access-key",
            "string",
            "Access key id for S3; leave unset to use the cluster's IAM role.",
            "hive.s3.aws-access-key",
            "s3.aws-access-key",
            credential=True,
        ),
        Property(
            "s3.aws-secret-key",
            "string",
            "Secret access key for S3 (with s3.aws-access-key).",
            "hive.s3.aws-secret-key",
            "s3.aws-secret-key",
            credential=True,
        ),
        Property(
            "s3.endpoint",
            "uri",
            "S3-compatible endpoint, e.g. a VPC endpoint or MinIO.",
            "hive.s3.endpoint",
            "s3.endpoint",
            schemes=("http://", "https://"),
        ),
        Property(
            "s3.region",
            "string",
            "Region of the S3 buckets (Trino needs it when no endpoint is set).",
            None,
            "s3.region",
        ),
        Property(
            "s3.path-style-access",
            "boolean",
            "Path-style requests, for S3-compatible stores.",
            "hive.s3.path-style-access",
            "s3.path-style-access",
            default="false",
        ),
    )


_COMPRESSION = ("NONE", "SNAPPY", "LZ4", "ZSTD", "GZIP")


def _jdbc_properties(scheme: str, example: str) -> tuple[Property, ...]:
    """The JDBC connectors share their names on both engines, except the metadata cache TTL."""
    return (
        Property(
            "connection-url",
            "uri",
            f"JDBC URL, e.g. {example}.",
            "connection-url",
            "connection-url",
            required=True,
            schemes=(scheme,),
        ),
        Property(
            "connection-user",
            "string",
            "Database user.",
            "connection-user",
            "connection-user",
            required=True,
        ),
        Property(
            "connection-password",
            "string",
            "Database password (a Secrets Manager ARN under secrets).",
            "connection-password",
            "connection-password",
            required=True,
            credential=True,
        ),
        Property(
            "case-insensitive-name-matching",
            "boolean",
            "Match schema and table names case-insensitively.",
            "case-insensitive-name-matching",
            "case-insensitive-name-matching",
            default="false",
        ),
        Property(
            "metadata-cache-ttl",
            "duration",
            "How long table and column metadata is cached.",
            "metadata-cache-ttl",
            "metadata.cache-ttl",
            default="0s",
        ),
    )


_HIVE = Connector(
    "hive",
    "Hive (S3 data lake)",
    presto="hive-hadoop2",
    trino="hive",
    metastore="hive",
    properties=(
        Property(
            "storage-format",
            "enum",
            "Default file format of new tables.",
            "hive.storage-format",
            "hive.storage-format",
            default="ORC",
            values=(
                "ORC",
                "PARQUET",
                "AVRO",
                "RCBINARY",
                "RCTEXT",
                "SEQUENCEFILE",
                "JSON",
                "TEXTFILE",
                "CSV",
            ),
        ),
        Property(
            "compression-codec",
            "enum",
            "Compression of written files.",
            "hive.compression-codec",
            "hive.compression-codec",
            default="GZIP",
            values=_COMPRESSION,
        ),
        Property(
            "non-managed-table-writes-enabled",
            "boolean",
            "Allow writes to external (non-managed) tables.",
            "hive.non-managed-table-writes-enabled",
            "hive.non-managed-table-writes-enabled",
            default="false",
        ),
        Property(
            "recursive-directories",
            "boolean",
            "Read files in subdirectories of table and partition locations.",
            "hive.recursive-directories",
            "hive.recursive-directories",
            default="false",
        ),
        Property(
            "max-partitions-per-writers",
            "integer",
            "Most partitions one writer may create.",
            "hive.max-partitions-per-writers",
            "hive.max-partitions-per-writers",
            default="100",
        ),
        Property(
            "max-split-size",
            "data_size",
            "Largest split a worker reads.",
            "hive.max-split-size",
            "hive.max-split-size",
            default="64MB",
        ),
        Property(
            "metastore-timeout",
            "duration",
            "Timeout of metastore requests.",
            "hive.metastore-timeout",
            "hive.metastore-timeout",
            default="10s",
        ),
        Property(
            "allow-drop-table",
            "boolean",
            "Allow DROP TABLE under PrestoDB's legacy security (Trino has no such switch).",
            "hive.allow-drop-table",
            None,
            default="false",
        ),
        *_s3_properties(),
    ),
)

_ICEBERG = Connector(
    "iceberg",
    "Apache Iceberg",
    presto="iceberg",
    trino="iceberg",
    metastore="iceberg",
    properties=(
        Property(
            "file-format",
            "enum",
            "File format of new tables' data files.",
            "iceberg.file-format",
            "iceberg.file-format",
            default="PARQUET",
            values=("PARQUET", "ORC", "AVRO"),
        ),
        Property(
            "compression-codec",
            "enum",
            "Compression of written files.",
            "iceberg.compression-codec",
            "iceberg.compression-codec",
            default="ZSTD",
            values=_COMPRESSION,
        ),
        Property(
            "max-partitions-per-writer",
            "integer",
            "Most partitions one writer may create.",
            "iceberg.max-partitions-per-writer",
            "iceberg.max-partitions-per-writer",
            default="100",
        ),
        Property(
            "register-table-procedure-enabled",
            "boolean",
            "Allow the register_table procedure (Trino; always on in PrestoDB).",
            None,
            "iceberg.register-table-procedure.enabled",
            default="false",
        ),
        *_s3_properties(),
    ),
)

_DELTA = Connector(
    "delta_lake",
    "Delta Lake",
    presto="delta",
    trino="delta_lake",
    metastore="hive",
    properties=(
        Property(
            "register-table-procedure-enabled",
            "boolean",
            "Allow the register_table procedure (Trino).",
            None,
            "delta.register-table-procedure.enabled",
            default="false",
        ),
        Property(
            "enable-non-concurrent-writes",
            "boolean",
            "Allow writes to S3, which has no atomic rename (Trino).",
            None,
            "delta.enable-non-concurrent-writes",
            default="false",
        ),
        Property(
            "vacuum-min-retention",
            "duration",
            "Shortest retention the vacuum procedure accepts (Trino).",
            None,
            "delta.vacuum.min-retention",
            default="7d",
        ),
        Property(
            "parquet-dereference-pushdown-enabled",
            "boolean",
            "Push nested field reads into the Parquet reader (PrestoDB).",
            "delta.parquet-dereference-pushdown-enabled",
            None,
            default="true",
        ),
        *_s3_properties(),
    ),
)

_MYSQL = Connector(
    "mysql",
    "MySQL",
    presto="mysql",
    trino="mysql",
    properties=_jdbc_properties("jdbc:mysql://", "jdbc:mysql://db.example.internal:3306"),
)

_POSTGRESQL = Connector(
    "postgresql",
    "PostgreSQL",
    presto="postgresql",
    trino="postgresql",
    properties=(
        *_jdbc_properties("jdbc:postgresql://", "jdbc:postgresql://db.example.internal:5432/app"),
        Property(
            "array-mapping",
            "enum",
            "How PostgreSQL arrays are read (Trino).",
            None,
            "postgresql.array-mapping",
            default="DISABLED",
            values=("DISABLED", "AS_ARRAY", "AS_JSON"),
        ),
    ),
)

_REDSHIFT = Connector(
    "redshift",
    "Amazon Redshift",
    presto="redshift",
    trino="redshift",
    properties=_jdbc_properties(
        "jdbc:redshift://", "jdbc:redshift://wh.abc.eu-west-1.redshift.amazonaws.com:5439/dev"
    ),
)

_TPCH = Connector(
    "tpch",
    "TPC-H (generated benchmark data)",
    presto="tpch",
    trino="tpch",
    properties=(
        Property(
            "splits-per-node",
            "integer",
            "Splits generated per worker; more parallelism for bigger scale factors.",
            "tpch.splits-per-node",
            "tpch.splits-per-node",
        ),
        Property(
            "column-naming",
            "enum",
            "Column names as in the specification (STANDARD) or without prefixes.",
            "tpch.column-naming",
            "tpch.column-naming",
            default="SIMPLIFIED",
            values=("SIMPLIFIED", "STANDARD"),
        ),
    ),
)

_TPCDS = Connector(
    "tpcds",
    "TPC-DS (generated benchmark data)",
    presto="tpcds",
    trino="tpcds",
    properties=(
        Property(
            "splits-per-node",
            "integer",
            "Splits generated per worker.",
            "tpcds.splits-per-node",
            "tpcds.splits-per-node",
        ),
    ),
)

CONNECTORS: Mapping[str, Connector] = {
    c.name: c for c in (_HIVE, _ICEBERG, _DELTA, _MYSQL, _POSTGRESQL, _REDSHIFT, _TPCH, _TPCDS)
}

# Set from the catalog's metastore, never by hand (module docstring).
METASTORE_PROPERTY_NAMES = frozenset(
    {
        "hive.metastore",
        "hive.metastore.uri",
        "hive.metastore.glue.region",
        "hive.metastore.glue.catalogid",
        "iceberg.catalog.type",
        "metastore",
        "metastore.uri",
    }
)


def connector_schema() -> list[dict[str, Any]]:
    """The registry as JSON, as served by ``GET /api/v1/connectors``."""
    return [
        {
            "name": c.name,
            "title": c.title,
            "uses_metastore": c.uses_metastore,
            "engines": {"presto": c.presto, "trino": c.trino},
            "properties": [
                {
                    "key": p.key,
                    "type": p.type,
                    "values": list(p.values),
                    "required": p.required,
                    "default": p.default,
                    "credential": p.credential,
                    "description": p.description,
                    "engines": {"presto": p.presto, "trino": p.trino},
                }
                for p in c.properties
            ],
        }
        for c in CONNECTORS.values()
    ]


# --- validation ---------------------------------------------------------------------------------


def _engine_names_hint(connector: Connector, key: str) -> str | None:
    """'hive.s3.aws-access-key is the PrestoDB name; use ...' for an engine's own name."""
    for prop in connector.properties:
        engines = [ENGINE_TITLES[e] for e in ENGINES if prop.engine_name(e) == key]
        if engines and prop.key != key:
            return f"'{key}' is the {' and '.join(engines)} name; use '{prop.key}'."
    return None


def _unknown_key_message(connector: Connector, key: str) -> str:
    hint = _engine_names_hint(connector, key)
    if hint is not None:
        return hint
    if key == "connector.name":
        return "'connector.name' is set from 'connector'."
    if key in METASTORE_PROPERTY_NAMES:
        if connector.uses_metastore:
            return f"'{key}' comes from the catalog's metastore; set 'metastore' instead."
        return f"'{key}' does not apply to the {connector.name} connector."
    message = f"Unknown property '{key}' for the {connector.name} connector."
    close = difflib.get_close_matches(key, [p.key for p in connector.properties], n=1, cutoff=0.6)
    if close:
        message += f" Did you mean '{close[0]}'?"
    return message


def _type_error(prop: Property, value: Any) -> str | None:
    """Why ``value`` is not a valid ``prop``, or None. JSON scalars of the right kind count."""
    if isinstance(value, (dict, list)) or value is None:
        return "Must be a single value."
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if prop.type == "integer":
        if isinstance(value, bool) or not _INTEGER_RE.match(text):
            return "Must be an integer."
    elif prop.type == "boolean":
        if text.lower() not in ("true", "false"):
            return "Must be true or false."
    elif prop.type == "duration":
        if not _DURATION_RE.match(text):
            return "Must be a duration such as 30s, 10m or 1h."
    elif prop.type == "data_size":
        if not _DATA_SIZE_RE.match(text):
            return "Must be a data size such as 64MB or 1GB."
    elif prop.type == "enum":
        if text.upper() not in prop.values:
            return f"Must be one of {', '.join(prop.values)}."
    elif prop.type == "uri":
        if not text.startswith(prop.schemes) or len(text) <= len(text.split("//")[0]) + 2:
            return f"Must start with {' or '.join(prop.schemes)}."
    elif not isinstance(value, str):
        return "Must be a string."
    if len(text) > 4096:
        return "At most 4096 characters."
    return None


def secret_arn(value: Any) -> str | None:
    """The ARN of a ``secrets`` entry (a string, or ``{"arn", "json_key"}``), or None."""
    if isinstance(value, Mapping):
        value = value.get("arn")
    return value if isinstance(value, str) else None


def _secret_error(value: Any) -> str | None:
    arn = secret_arn(value)
    if arn is None or not SECRET_ARN_RE.match(arn):
        return (
            "Must be a Secrets Manager ARN "
            "(arn:aws:secretsmanager:<region>:<account>:secret:<name>); never the secret itself."
        )
    if isinstance(value, Mapping):
        extra = set(value) - {"arn", "json_key"}
        json_key = value.get("json_key")
        if extra:
            return f"Unknown keys {sorted(extra)}; give arn and optionally json_key."
        if json_key is not None and not (
            isinstance(json_key, str) and re.match(r"^[A-Za-z0-9_.-]{1,128}$", json_key)
        ):
            return "json_key must be a key of the JSON secret ([A-Za-z0-9_.-], up to 128)."
    return None


def validate_catalog(
    connector: str,
    properties: Mapping[str, Any],
    secrets: Mapping[str, Any],
    *,
    has_metastore: bool | None = None,
) -> dict[str, list[str]]:
    """Field errors (``connector``, ``metastore``, ``properties.<key>``, ``secrets.<key>``).

    ``has_metastore`` (when known) checks that metastore-backed connectors have one and the
    others do not.
    """
    errors: dict[str, list[str]] = {}
    spec = CONNECTORS.get(connector)
    if spec is None:
        message = f"Unknown connector '{connector}'. Known: {', '.join(CONNECTORS)}."
        close = difflib.get_close_matches(str(connector), list(CONNECTORS), n=1)
        if close:
            message += f" Did you mean '{close[0]}'?"
        return {"connector": [message]}

    for key, value in properties.items():
        prop = spec.property(key)
        if prop is None:
            errors[f"properties.{key}"] = [_unknown_key_message(spec, key)]
        elif prop.credential:
            errors[f"properties.{key}"] = [
                f"'{key}' is a credential; give it under secrets as a Secrets Manager ARN."
            ]
        else:
            problem = _type_error(prop, value)
            if problem is not None:
                errors[f"properties.{key}"] = [problem]

    for key, value in secrets.items():
        prop = spec.property(key)
        if prop is None:
            errors[f"secrets.{key}"] = [_unknown_key_message(spec, key)]
        elif not prop.credential:
            errors[f"secrets.{key}"] = [f"'{key}' is not a credential; give it under properties."]
        else:
            problem = _secret_error(value)
            if problem is not None:
                errors[f"secrets.{key}"] = [problem]

    for prop in spec.properties:
        if prop.required and prop.key not in properties and prop.key not in secrets:
            where = "secrets (a Secrets Manager ARN)" if prop.credential else "properties"
            errors.setdefault(
                f"{'secrets' if prop.credential else 'properties'}.{prop.key}",
                [f"'{prop.key}' is required; give it under {where}."],
            )

    if has_metastore is not None:
        if spec.uses_metastore and not has_metastore:
            errors["metastore"] = [f"The {spec.name} connector needs a metastore."]
        elif not spec.uses_metastore and has_metastore:
            errors["metastore"] = [f"The {spec.name} connector does not use a metastore."]
    return errors


def normalize_properties(connector: str, properties: Mapping[str, Any]) -> dict[str, str]:
    """Validated values as the strings catalog files hold (``true``, ``PARQUET``, ``100``)."""
    spec = CONNECTORS[connector]
    out: dict[str, str] = {}
    for key, value in properties.items():
        prop = spec.property(key)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if prop is not None and prop.type == "boolean":
            text = text.lower()
        elif prop is not None and prop.type == "enum":
            text = text.upper()
        out[key] = text
    return out


# --- rendering ----------------------------------------------------------------------------------


class UnsupportedProperty(ValueError):
    """A catalog sets a property the cluster's engine does not have."""


class UnknownConnector(ValueError):
    """The catalog names a connector this registry does not know."""


def _metastore_properties(
    connector: Connector,
    metastore: ThriftMetastore | GlueMetastore | None,
    engine: Engine,
) -> dict[str, str]:
    if connector.metastore is None or metastore is None:
        return {}
    out: dict[str, str] = {}
    if connector.metastore == "iceberg":
        # PrestoDB reaches Glue through its Hive catalog type (hive.metastore=glue);
        # Trino has a catalog type of each.
        if engine == "presto":
            out["iceberg.catalog.type"] = "hive"
        else:
            glue = isinstance(metastore, GlueMetastore)
            out["iceberg.catalog.type"] = "glue" if glue else "hive_metastore"
    if isinstance(metastore, ThriftMetastore):
        out["hive.metastore.uri"] = metastore.uris
    else:
        if not (connector.metastore == "iceberg" and engine == "trino"):
            out["hive.metastore"] = "glue"
        out["hive.metastore.glue.region"] = metastore.region
        if metastore.catalog_id:
            out["hive.metastore.glue.catalogid"] = metastore.catalog_id
    if engine == "trino":
        # Trino 470+ has only the native S3 file system, and it is off unless enabled.
        out["fs.native-s3.enabled"] = "true"
    return out


def engine_properties(spec: CatalogSpec, engine: Engine) -> dict[str, str]:
    """The catalog file for ``engine``, without the secret-backed properties (the renderer adds
    those as ``${ENV:…}`` references). Raises :class:`UnsupportedProperty` for a set property
    the engine does not have."""
    connector = CONNECTORS.get(spec.connector)
    if connector is None:
        raise UnknownConnector(f"catalog {spec.name}: unknown connector {spec.connector!r}")
    out = {"connector.name": connector.connector_name(engine)}
    out.update(_metastore_properties(connector, spec.metastore, engine))
    unsupported = []
    for key, value in sorted(spec.properties.items()):
        prop = connector.property(key)
        name = prop.engine_name(engine) if prop is not None else None
        if name is None:
            unsupported.append(key)
        else:
            out[name] = value
    if unsupported:
        raise UnsupportedProperty(
            f"catalog {spec.name}: {', '.join(unsupported)} cannot be set on "
            f"{ENGINE_TITLES[engine]} ({connector.name} connector)"
        )
    return out


def secret_property_names(spec: CatalogSpec, engine: Engine) -> dict[str, str]:
    """Neutral secret key → the engine's property name, for the renderer's ``${ENV:…}`` lines."""
    connector = CONNECTORS.get(spec.connector)
    if connector is None:
        raise UnknownConnector(f"catalog {spec.name}: unknown connector {spec.connector!r}")
    out: dict[str, str] = {}
    for key in sorted(spec.secrets):
        prop = connector.property(key)
        name = prop.engine_name(engine) if prop is not None else None
        if name is None:
            raise UnsupportedProperty(
                f"catalog {spec.name}: {key} cannot be set on {ENGINE_TITLES[engine]}"
            )
        out[key] = name
    return out
