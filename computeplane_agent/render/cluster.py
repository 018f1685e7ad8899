"""Kubernetes objects for one Presto/Trino cluster.

Pure functions: a ``ClusterSpec`` (plus the compute plane's network and registry settings) in, a
list of plain dicts out, in apply order. The same output is applied by the agent, written by the
directory target and shown to users who want to read what would run in their EKS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from computeplane_agent.contract import WORKLOAD_NAMESPACE, CatalogSpec, ClusterSpec
from computeplane_agent.render.engines import HTTP_PORT, PROFILES, SHUTDOWN_USER, EngineProfile
from computeplane_agent.render.memory import PodSizing, pod_sizing
from computeplane_agent.versions import release

KubeObject = dict[str, Any]

MANAGED_BY = "lakeplane-agent"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_CLUSTER = "lakeplane.io/cluster"
LABEL_COMPONENT = "app.kubernetes.io/component"
# Every node of a cluster's node group(s) carries this label and a NoSchedule taint with the same
# key and value; the control plane's node-group reconciler sets both.
NODE_GROUP_LABEL = "lakeplane.io/node-group"
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
# Time a worker gets on top of the longest query: Trino waits shutdown.grace-period before and
# after draining, then the JVM stops.
_SHUTDOWN_MARGIN_SECONDS = 120
_WORKER_SHUTDOWN_GRACE = "30s"


def resource_prefix(cluster_id: str) -> str:
    """DNS-1123 name prefix of a cluster's objects (``cl_01hv…`` → ``lp-cl-01hv…``)."""
    return "lp-" + cluster_id.replace("_", "-")


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _checksum(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class _ClusterRenderer:
    def __init__(
        self,
        spec: ClusterSpec,
        *,
        vpc_cidr: str,
        registry_mirror: str | None,
        catalogs: Sequence[CatalogSpec],
    ) -> None:
        self.spec = spec
        self.catalogs = tuple(catalogs)
        self.vpc_cidr = vpc_cidr
        self.profile: EngineProfile = PROFILES[spec.engine]
        self.image = release(spec.engine, spec.version).image(registry_mirror)
        self.prefix = resource_prefix(spec.id)
        self.coordinator_sizing = pod_sizing(spec.coordinator.instance_type)
        self.worker_sizing = pod_sizing(spec.workers.instance_type)
        self.service = f"{self.prefix}-coordinator"
        self.discovery_uri = f"http://{self.service}.{WORKLOAD_NAMESPACE}.svc:{HTTP_PORT}"

    # --- metadata -------------------------------------------------------------------------------

    def labels(self, component: str | None = None) -> dict[str, str]:
        labels = {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_CLUSTER: self.spec.id,
            "app.kubernetes.io/name": self.spec.engine,
            "app.kubernetes.io/instance": self.prefix,
        }
        if component:
            labels[LABEL_COMPONENT] = component
        return labels

    def selector(self, component: str) -> dict[str, str]:
        return {LABEL_CLUSTER: self.spec.id, LABEL_COMPONENT: component}

    def metadata(self, name: str, component: str | None = None) -> dict[str, Any]:
        return {"name": name, "namespace": WORKLOAD_NAMESPACE, "labels": self.labels(component)}

    # --- configuration files ---------------------------------------------------------------------

    def _jvm_config(self, sizing: PodSizing) -> str:
        return "\n".join(
            [
                "-server",
                f"-Xmx{sizing.heap_mib}M",
                "-XX:InitialRAMPercentage=80",
                "-XX:+UseG1GC",
                "-XX:G1HeapRegionSize=32M",
                "-XX:+ExplicitGCInvokesConcurrent",
                "-XX:+ExitOnOutOfMemoryError",
                "-XX:+HeapDumpOnOutOfMemoryError",
                "-XX:ReservedCodeCacheSize=512M",
                "-Djdk.attach.allowAttachSelf=true",
                "",
            ]
        )

    def _memory_properties(self, sizing: PodSizing, *, cluster_wide: bool) -> dict[str, str]:
        per_node = f"{sizing.query_max_memory_per_node_mib}MB"
        values = {"query.max-memory-per-node": per_node}
        if self.profile.has_total_memory_limits:
            values["query.max-total-memory-per-node"] = per_node
        if cluster_wide:
            # Sized for the autoscaling ceiling so a resize never has to roll the coordinator.
            workers = max(self.spec.workers.max_replicas or self.spec.workers.replicas, 1)
            total = f"{self.worker_sizing.query_max_memory_per_node_mib * workers}MB"
            values["query.max-memory"] = total
            if self.profile.has_total_memory_limits:
                values["query.max-total-memory"] = total
        return values

    def _common_files(self, sizing: PodSizing) -> dict[str, str]:
        return {
            "jvm.config": self._jvm_config(sizing),
            "node.properties": _properties(
                {
                    # Presto requires a lower-case alphanumeric environment name.
                    "node.environment": self.spec.id.replace("_", ""),
                    "node.data-dir": "/data",
                }
            ),
            "log.properties": _properties({self.profile.log_root: "INFO"}),
        }

    def coordinator_files(self) -> dict[str, str]:
        config = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "false",
            "http-server.http.port": str(HTTP_PORT),
            **self.profile.coordinator_properties,
            "discovery.uri": self.discovery_uri,
            **self._memory_properties(self.coordinator_sizing, cluster_wide=True),
        }
        return {
            "config.properties": _properties(config),
            **self._common_files(self.coordinator_sizing),
        }

    def worker_files(self) -> dict[str, str]:
        config = {
            "coordinator": "false",
            "http-server.http.port": str(HTTP_PORT),
            "discovery.uri": self.discovery_uri,
            "shutdown.grace-period": _WORKER_SHUTDOWN_GRACE,
            **self._memory_properties(self.worker_sizing, cluster_wide=False),
        }
        files = {"config.properties": _properties(config), **self._common_files(self.worker_sizing)}
        if self.profile.worker_needs_shutdown_rule:
            files["access-control.properties"] = _properties(
                {
                    "access-control.name": "file",
                    "security.config-file": f"{self.profile.config_dir}/shutdown-rules.json",
                }
            )
            files["shutdown-rules.json"] = json.dumps(
                {
                    "catalogs": [{"allow": "all"}],
                    "system_information": [{"user": SHUTDOWN_USER, "allow": ["read", "write"]}],
                },
                indent=2,
                sort_keys=True,
            )
        return files

    def catalog_files(self) -> dict[str, str]:
        return {f"{c.name}.properties": self._catalog_file(c) for c in self.catalogs}

    def _catalog_file(self, catalog: CatalogSpec) -> str:
        values = {"connector.name": catalog.connector, **catalog.properties}
        # Secret values never pass through the control plane: the property refers to an
        # environment variable filled from a Secret the agent resolves inside the VPC.
        for key in catalog.secrets:
            values[key] = "${ENV:" + _secret_env(catalog.name, key) + "}"
        return _properties(values)

    # --- objects ---------------------------------------------------------------------------------

    def config_map(self, name: str, data: dict[str, str], component: str | None) -> KubeObject:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(name, component),
            "data": data,
        }

    def _secret_env(self) -> list[dict[str, Any]]:
        return [
            {
                "name": _secret_env(catalog.name, key),
                "valueFrom": {
                    "secretKeyRef": {
                        "name": f"{self.prefix}-catalog-secrets",
                        "key": _secret_env(catalog.name, key),
                        "optional": True,
                    }
                },
            }
            for catalog in self.catalogs
            for key in catalog.secrets
        ]

    def pod_template(
        self,
        component: str,
        sizing: PodSizing,
        files: dict[str, str],
        *,
        instance_type: str,
        spot: bool,
        grace_seconds: int,
        lifecycle: dict[str, Any] | None,
    ) -> dict[str, Any]:
        config_name = f"{self.prefix}-{component}-config"
        catalogs = self.catalog_files()
        memory = f"{sizing.container_memory_mib}Mi"
        container: dict[str, Any] = {
            "name": self.spec.engine,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
            "env": self._secret_env(),
            "resources": {
                "requests": {"cpu": f"{sizing.cpu_request_milli}m", "memory": memory},
                "limits": {"memory": memory},
            },
            "volumeMounts": [
                {"name": "config", "mountPath": self.profile.config_dir},
                {"name": "catalog", "mountPath": self.profile.catalog_dir},
                {"name": "data", "mountPath": "/data"},
            ],
            "readinessProbe": {
                # ACTIVE only: a worker asked to shut down leaves the ready set at once.
                "exec": {
                    "command": [
                        "sh",
                        "-c",
                        f"curl -sf http://localhost:{HTTP_PORT}/v1/info/state | grep -q ACTIVE",
                    ]
                },
                "initialDelaySeconds": 10,
                "periodSeconds": 10,
                "timeoutSeconds": 5,
            },
            "livenessProbe": {
                "httpGet": {"path": "/v1/info", "port": "http"},
                "initialDelaySeconds": 60,
                "periodSeconds": 20,
                "timeoutSeconds": 5,
                "failureThreshold": 6,
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        if lifecycle:
            container["lifecycle"] = lifecycle
        node_selector = {
            NODE_GROUP_LABEL: self.spec.node_group,
            INSTANCE_TYPE_LABEL: instance_type,
            CAPACITY_TYPE_LABEL: "SPOT" if spot else "ON_DEMAND",
        }
        return {
            "metadata": {
                "labels": self.labels(component),
                "annotations": {
                    # A config change or a restart request rolls the pods; nothing else does.
                    "lakeplane.io/config-checksum": _checksum({**files, **catalogs}),
                    "lakeplane.io/restart-generation": str(self.spec.restart_generation),
                },
            },
            "spec": {
                "nodeSelector": node_selector,
                "tolerations": [
                    {
                        "key": NODE_GROUP_LABEL,
                        "operator": "Equal",
                        "value": self.spec.node_group,
                        "effect": "NoSchedule",
                    }
                ],
                "terminationGracePeriodSeconds": grace_seconds,
                "enableServiceLinks": False,
                "automountServiceAccountToken": False,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container],
                "volumes": [
                    {"name": "config", "configMap": {"name": config_name}},
                    {"name": "catalog", "configMap": {"name": f"{self.prefix}-catalog"}},
                    {"name": "data", "emptyDir": {}},
                ],
            },
        }

    def deployment(
        self, component: str, replicas: int, template: dict[str, Any], strategy: dict[str, Any]
    ) -> KubeObject:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.metadata(f"{self.prefix}-{component}", component),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": self.selector(component)},
                "strategy": strategy,
                "template": template,
            },
        }

    def worker_prestop(self) -> dict[str, Any]:
        # Ask the worker to stop taking tasks, then wait until it has drained and exited by
        # itself; Kubernetes sends SIGTERM only after this hook returns.
        state_url = f"http://localhost:{HTTP_PORT}/v1/info/state"
        script = (
            f"curl -sf -X PUT -H 'Content-Type: application/json' "
            f"-H '{self.profile.user_header}: {SHUTDOWN_USER}' -d '\"SHUTTING_DOWN\"' {state_url}"
            f" && while curl -sf {state_url} >/dev/null; do sleep 5; done; true"
        )
        return {"preStop": {"exec": {"command": ["sh", "-c", script]}}}

    def render(self) -> list[KubeObject]:
        spec = self.spec
        running = spec.state == "running"
        coordinator_files = self.coordinator_files()
        worker_files = self.worker_files()
        worker_grace = spec.max_query_minutes * 60 + _SHUTDOWN_MARGIN_SECONDS
        return [
            self.config_map(f"{self.prefix}-coordinator-config", coordinator_files, "coordinator"),
            self.config_map(f"{self.prefix}-worker-config", worker_files, "worker"),
            self.config_map(f"{self.prefix}-catalog", self.catalog_files(), None),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": self.metadata(self.service, "coordinator"),
                "spec": {
                    "type": "ClusterIP",
                    "selector": self.selector("coordinator"),
                    "ports": [
                        {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}
                    ],
                },
            },
            self.deployment(
                "coordinator",
                1 if running else 0,
                self.pod_template(
                    "coordinator",
                    self.coordinator_sizing,
                    coordinator_files,
                    instance_type=spec.coordinator.instance_type,
                    spot=False,  # losing the coordinator fails every query: never on spot
                    grace_seconds=60,
                    lifecycle=None,
                ),
                # One coordinator per node, and the node group has no spare node to surge into.
                {"type": "Recreate"},
            ),
            self.deployment(
                "worker",
                spec.workers.replicas if running else 0,
                self.pod_template(
                    "worker",
                    self.worker_sizing,
                    worker_files,
                    instance_type=spec.workers.instance_type,
                    spot=spec.workers.spot,
                    grace_seconds=worker_grace,
                    lifecycle=self.worker_prestop(),
                ),
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"},
                },
            ),
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": self.metadata(f"{self.prefix}-worker", "worker"),
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": self.selector("worker")},
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.metadata(f"{self.prefix}-coordinator", "coordinator"),
                "spec": {
                    "podSelector": {"matchLabels": self.selector("coordinator")},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"ipBlock": {"cidr": self.vpc_cidr}}],
                            "ports": [{"protocol": "TCP", "port": HTTP_PORT}],
                        }
                    ],
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.metadata(f"{self.prefix}-worker", "worker"),
                "spec": {
                    # Workers talk only to their own cluster's pods.
                    "podSelector": {"matchLabels": self.selector("worker")},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"podSelector": {"matchLabels": {LABEL_CLUSTER: spec.id}}}],
                            "ports": [{"protocol": "TCP", "port": HTTP_PORT}],
                        }
                    ],
                },
            },
        ]


def _secret_env(catalog: str, key: str) -> str:
    clean = "".join(ch if ch.isalnum() else "_" for ch in key).upper()
    return f"CATALOG_{catalog.upper()}_{clean}"


def render_cluster(
    spec: ClusterSpec,
    *,
    vpc_cidr: str,
    registry_mirror: str | None = None,
    catalogs: Sequence[CatalogSpec] = (),
) -> list[KubeObject]:
    """The Kubernetes objects of one cluster, with the catalogs it attaches (resolved from the
    desired state). Raises ``ValueError`` subclasses for an unknown instance type or an
    unsupported engine version."""
    return _ClusterRenderer(
        spec, vpc_cidr=vpc_cidr, registry_mirror=registry_mirror, catalogs=catalogs
    ).render()
