"""Kubernetes objects for a managed Hive standalone metastore.

The ``apache/hive`` image runs the metastore with ``SERVICE_NAME=metastore``. Its PostgreSQL
database is an RDS instance in the customer's private subnets whose master password RDS keeps in
Secrets Manager: the agent resolves it into the Secret ``<prefix>-db`` (see
``metastore_secret``), and the pods read it from there as an environment variable — the password
is never in a ConfigMap, a pod template or the desired state.

Metastore pods run on the compute plane's system nodes: they tolerate no cluster taint, so they
can never land on a cluster's (or a cache's) node group.
"""

from __future__ import annotations

from typing import Any

from computeplane_agent.connectors import METASTORE_PORT, metastore_service_name
from computeplane_agent.contract import MetastoreSpec
from computeplane_agent.install import SYSTEM_NODE_SELECTOR
from computeplane_agent.render.objects import (
    CONTAINER_SECURITY,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_METASTORE,
    MANAGED_BY,
    POD_SECURITY,
    KubeObject,
    checksum,
    config_map,
    dns_name,
    hadoop_xml,
    metadata,
    pdb,
    secret,
    secret_env,
)
from computeplane_agent.versions import component_release

CONF_DIR = "/opt/hive/conf"
PASSWORD_KEY = "password"  # noqa: S105 - the Secret key, not a value
PASSWORD_ENV = "HIVE_DB_PASSWORD"  # noqa: S105 - the variable's name, not a value
# The label every Presto/Trino pod carries; only those pods may call the metastore.
_CLUSTER_POD_LABEL = "lakeplane.io/cluster"


def _labels(spec: MetastoreSpec, component: str | None = None) -> dict[str, str]:
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_METASTORE: spec.id,
        "app.kubernetes.io/name": "hive-metastore",
        "app.kubernetes.io/instance": dns_name(spec.id),
    }
    if component:
        labels[LABEL_COMPONENT] = component
    return labels


def _selector(spec: MetastoreSpec) -> dict[str, str]:
    return {LABEL_METASTORE: spec.id, LABEL_COMPONENT: "metastore"}


def secret_name(spec: MetastoreSpec) -> str:
    return f"{dns_name(spec.id)}-db"


def metastore_secret(spec: MetastoreSpec, password: str) -> KubeObject:
    """The database password the agent resolved from RDS's managed secret."""
    return secret(secret_name(spec), _labels(spec), {PASSWORD_KEY: password})


def _s3a(uri: str) -> str:
    # Hadoop's S3 client is the s3a:// scheme; users and the API speak s3://.
    return "s3a://" + uri.split("://", 1)[1] if uri.startswith("s3://") else uri


def site_properties(spec: MetastoreSpec) -> dict[str, str]:
    db = spec.database
    url = f"jdbc:postgresql://{db.host}:{db.port}/{db.name}?sslmode=require"
    warehouse = _s3a(spec.warehouse)
    return {
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionURL": url,
        "javax.jdo.option.ConnectionUserName": db.username,
        # Hive 3 reads the hive.* name, Hive 4's standalone metastore the metastore.* one.
        "hive.metastore.warehouse.dir": warehouse,
        "metastore.warehouse.dir": warehouse,
        "metastore.thrift.port": str(METASTORE_PORT),
        "hive.metastore.schema.verification": "true",
        "hive.metastore.event.db.notification.api.auth": "false",
    }


def _schema_script(version: str) -> str:
    # Idempotent on every version: Hive 4 has -initOrUpgradeSchema; on Hive 3 ``-info`` fails
    # while no schema exists, so the script initialises a fresh database and upgrades an old one.
    auth = f'-passWord "${PASSWORD_ENV}"'
    tool = "/opt/hive/bin/schematool -dbType postgres"
    if version.startswith("3."):
        return (
            f"if {tool} -info {auth}; then {tool} -upgradeSchema {auth}; "
            f"else {tool} -initSchema {auth}; fi"
        )
    return f"{tool} -initOrUpgradeSchema {auth}"


def schema_job_name(spec: MetastoreSpec) -> str:
    # A Job's pod template is immutable: a new version or database gets a new Job (the old one is
    # pruned), and an unchanged one is never re-run.
    digest = checksum([spec.version, spec.database.model_dump()])[:8]
    return f"{dns_name(spec.id)}-schema-{digest}"


class _MetastoreRenderer:
    def __init__(self, spec: MetastoreSpec, registry_mirror: str | None) -> None:
        self.spec = spec
        self.prefix = dns_name(spec.id)
        self.image = component_release("hive-metastore", spec.version).image(registry_mirror)
        site = hadoop_xml(site_properties(spec))
        self.files = {"hive-site.xml": site, "metastore-site.xml": site}

    def _container(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "env": [
                {"name": "SERVICE_NAME", "value": "metastore"},
                {"name": "DB_DRIVER", "value": "postgres"},
                secret_env(PASSWORD_ENV, secret_name(self.spec), PASSWORD_KEY),
            ],
            "volumeMounts": [
                {"name": "config", "mountPath": f"{CONF_DIR}/{file}", "subPath": file}
                for file in sorted(self.files)
            ],
            "securityContext": CONTAINER_SECURITY,
        }

    def _pod_spec(self, container: dict[str, Any], restart: str) -> dict[str, Any]:
        return {
            "restartPolicy": restart,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "securityContext": POD_SECURITY,
            # The only untainted nodes: the compute plane's system node group.
            "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
            "containers": [container],
            "volumes": [{"name": "config", "configMap": {"name": f"{self.prefix}-config"}}],
        }

    def deployment(self) -> KubeObject:
        container = self._container("metastore")
        container["env"] += [
            # The schema Job owns initialisation; the image's entrypoint must not race it.
            {"name": "IS_RESUME", "value": "true"},
            # $(VAR) is expanded by the kubelet from the Secret-backed variable above.
            {
                "name": "SERVICE_OPTS",
                "value": f"-Djavax.jdo.option.ConnectionPassword=$({PASSWORD_ENV})",
            },
        ]
        container["ports"] = [
            {"name": "thrift", "containerPort": METASTORE_PORT, "protocol": "TCP"}
        ]
        container["readinessProbe"] = {
            "tcpSocket": {"port": "thrift"},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
        }
        container["livenessProbe"] = {
            "tcpSocket": {"port": "thrift"},
            "initialDelaySeconds": 120,
            "periodSeconds": 20,
            "failureThreshold": 6,
        }
        container["resources"] = {
            "requests": {"cpu": "500m", "memory": "2Gi"},
            "limits": {"memory": "2Gi"},
        }
        template_labels = _labels(self.spec, "metastore")
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(self.prefix, template_labels),
            "spec": {
                "replicas": self.spec.replicas,
                "selector": {"matchLabels": _selector(self.spec)},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {
                        "labels": template_labels,
                        # subPath mounts never see a ConfigMap change: a new config rolls.
                        "annotations": {"lakeplane.io/config-checksum": checksum(self.files)},
                    },
                    "spec": self._pod_spec(container, "Always"),
                },
            },
        }

    def schema_job(self) -> KubeObject:
        container = self._container("schematool")
        container["command"] = ["sh", "-c", _schema_script(self.spec.version)]
        labels = _labels(self.spec, "schema")
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata(schema_job_name(self.spec), labels),
            "spec": {
                "backoffLimit": 10,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": self._pod_spec(container, "OnFailure"),
                },
            },
        }

    def render(self) -> list[KubeObject]:
        labels = _labels(self.spec, "metastore")
        return [
            config_map(f"{self.prefix}-config", labels, self.files),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata(metastore_service_name(self.spec.id), labels),
                "spec": {
                    "type": "ClusterIP",
                    "selector": _selector(self.spec),
                    "ports": [
                        {
                            "name": "thrift",
                            "port": METASTORE_PORT,
                            "targetPort": "thrift",
                            "protocol": "TCP",
                        }
                    ],
                },
            },
            self.schema_job(),
            self.deployment(),
            pdb(self.prefix, labels, _selector(self.spec)),
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": metadata(self.prefix, labels),
                "spec": {
                    "podSelector": {"matchLabels": _selector(self.spec)},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchExpressions": [
                                            {"key": _CLUSTER_POD_LABEL, "operator": "Exists"}
                                        ]
                                    }
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": METASTORE_PORT}],
                        }
                    ],
                },
            },
        ]


def render_metastore(
    spec: MetastoreSpec, *, registry_mirror: str | None = None
) -> list[KubeObject]:
    """Every object of one managed metastore except its password Secret (the agent writes that
    from the resolved value). Raises ``UnsupportedVersion`` for an unknown Hive version."""
    return _MetastoreRenderer(spec, registry_mirror).render()
