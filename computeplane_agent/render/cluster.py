"""Kubernetes objects for one Presto/Trino cluster.

Pure functions: a ``ClusterSpec`` (plus the compute plane's network and registry settings) in, a
list of plain dicts out, in apply order. The same output is applied by the agent, written by the
directory target and shown to users who want to read what would run in their EKS.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from computeplane_agent import access
from computeplane_agent.contract import WORKLOAD_NAMESPACE, CacheSpec, CatalogSpec, ClusterSpec
from computeplane_agent.render import catalogs as catalog_render
from computeplane_agent.render.engines import HTTP_PORT, PROFILES, SHUTDOWN_USER, EngineProfile
from computeplane_agent.render.memory import PodSizing, pod_sizing
from computeplane_agent.render.objects import checksum, dns_name, properties
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
    return dns_name(cluster_id)


class _ClusterRenderer:
    def __init__(
        self,
        spec: ClusterSpec,
        *,
        vpc_cidr: str,
        registry_mirror: str | None,
        catalogs: Sequence[CatalogSpec],
        cache: CacheSpec | None,
    ) -> None:
        self.spec = spec
        self.catalogs = tuple(catalogs)
        self.cache = cache
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
            "node.properties": properties(
                {
                    # Presto requires a lower-case alphanumeric environment name.
                    "node.environment": self.spec.id.replace("_", ""),
                    "node.data-dir": "/data",
                }
            ),
            "log.properties": properties({self.profile.log_root: "INFO"}),
        }

    def coordinator_files(self) -> dict[str, str]:
        config = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "false",
            "http-server.http.port": str(HTTP_PORT),
            **self.profile.coordinator_properties,
            "discovery.uri": self.discovery_uri,
            **self._memory_properties(self.coordinator_sizing, cluster_wide=True),
            **self.profile.coordinator_catalog_properties,
        }
        files = {
            "config.properties": properties(config),
            **self._common_files(self.coordinator_sizing),
        }
        if self.spec.access_rules is not None and self.spec.engine == "trino":
            # The rules file lives in its own ConfigMap (not part of the config checksum): a
            # rule change is re-read by the engine within the refresh period, never a restart.
            files["access-control.properties"] = properties(
                {
                    "access-control.name": "file",
                    "security.config-file": f"{self.access_dir}/rules.json",
                    "security.refresh-period": f"{access.REFRESH_SECONDS}s",
                }
            )
        return files

    @property
    def access_dir(self) -> str:
        return f"{self.profile.config_dir}/access"

    def _hive_catalogs(self) -> list[CatalogSpec]:
        return [c for c in self.catalogs if c.connector == "hive"]

    def access_files(self) -> dict[str, str]:
        """The engine's rules files: Trino's system ``rules.json``; PrestoDB's Hive connector
        file security, one document per Hive catalog (PrestoDB has no system table rules)."""
        rules = self.spec.access_rules
        if rules is None:
            return {}
        if self.spec.engine == "trino":
            return {"rules.json": access.dumps(access.trino_rules(list(rules.rules)))}
        return {
            f"{c.name}.json": access.dumps(access.presto_hive_rules(list(rules.rules), c.name))
            for c in self._hive_catalogs()
        }

    def worker_files(self) -> dict[str, str]:
        config = {
            "coordinator": "false",
            "http-server.http.port": str(HTTP_PORT),
            "discovery.uri": self.discovery_uri,
            "shutdown.grace-period": _WORKER_SHUTDOWN_GRACE,
            **self._memory_properties(self.worker_sizing, cluster_wide=False),
            **self.profile.worker_catalog_properties,
        }
        files = {"config.properties": properties(config), **self._common_files(self.worker_sizing)}
        if self.profile.worker_needs_shutdown_rule:
            files["access-control.properties"] = properties(
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
        files = catalog_render.catalog_files(self.catalogs, self.spec.engine, self.cache)
        if self.spec.access_rules is not None and self.spec.engine == "presto":
            for c in self._hive_catalogs():
                files[f"{c.name}.properties"] += properties(
                    {
                        "hive.security": "file",
                        "security.config-file": f"{self.access_dir}/{c.name}.json",
                        "security.refresh-period": f"{access.REFRESH_SECONDS}s",
                    }
                )
        return files

    def cache_files(self) -> dict[str, str]:
        return catalog_render.cache_files(self.spec.engine, self.cache)

    def secret_env_names(self) -> list[str]:
        return sorted(
            catalog_render.secret_env(c.name, key) for c in self.catalogs for key in c.secrets
        )

    # --- objects ---------------------------------------------------------------------------------

    def config_map(self, name: str, data: dict[str, str], component: str | None) -> KubeObject:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(name, component),
            "data": data,
        }

    def _secret_env_from(self) -> list[dict[str, Any]]:
        # The whole Secret as environment (its keys are the variable names); optional, so a pod
        # of a cluster without secret-backed catalogs does not wait for it.
        name = catalog_render.catalog_secret_name(self.prefix)
        return [{"secretRef": {"name": name, "optional": True}}]

    def _catalog_init_container(self) -> dict[str, Any]:
        presto = self.spec.engine == "presto"
        script = (
            catalog_render.PRESTO_SUBSTITUTE_SCRIPT if presto else catalog_render.TRINO_SEED_SCRIPT
        )
        container: dict[str, Any] = {
            "name": "catalogs",
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
            "env": [{"name": "CATALOG_DIR", "value": self.profile.catalog_dir}],
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "64Mi"},
            },
            "volumeMounts": [
                {"name": "catalog-template", "mountPath": "/catalog-template", "readOnly": True},
                {"name": "catalog", "mountPath": self.profile.catalog_dir},
            ],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        if presto:
            container["envFrom"] = self._secret_env_from()
        return container

    def _checksums(self, files: dict[str, str]) -> dict[str, str]:
        if self.spec.engine == "trino":
            # Catalog changes reach Trino as statements, never as a restart. Only a new set of
            # secret variables does: environment is read at process start.
            return {
                "lakeplane.io/config-checksum": checksum({**files, **self.cache_files()}),
                "lakeplane.io/secret-env": checksum({"names": ",".join(self.secret_env_names())}),
            }
        # PrestoDB reads catalogs at start only: a catalog change is a rolling restart.
        return {
            "lakeplane.io/config-checksum": checksum(
                {**files, **self.catalog_files(), **self.cache_files()}
            )
        }

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
        memory = f"{sizing.container_memory_mib}Mi"
        container: dict[str, Any] = {
            "name": self.spec.engine,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
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
        if self.spec.engine == "trino":
            container["envFrom"] = self._secret_env_from()
        volumes: list[dict[str, Any]] = [
            {"name": "config", "configMap": {"name": config_name}},
            {"name": "catalog-template", "configMap": {"name": f"{self.prefix}-catalog"}},
            # Memory-backed: on PrestoDB it holds the substituted credentials, never on disk.
            {"name": "catalog", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            {"name": "data", "emptyDir": {}},
        ]
        if component == "coordinator" and self.spec.access_rules is not None:
            volumes.append(
                {"name": "access-rules", "configMap": {"name": f"{self.prefix}-access-rules"}}
            )
            # A directory mount (no subPath), so the kubelet refreshes the files in place.
            container["volumeMounts"].append(
                {"name": "access-rules", "mountPath": self.access_dir, "readOnly": True}
            )
        if self.cache is not None:
            volumes.append(
                {"name": "cache-client", "configMap": {"name": f"{self.prefix}-cache-client"}}
            )
            if self.spec.engine == "trino":
                # Trino's file system cache (catalogs.py): the node's local disk, per pod.
                volumes.append({"name": "fs-cache", "emptyDir": {}})
                container["volumeMounts"].append(
                    {"name": "fs-cache", "mountPath": catalog_render.TRINO_FS_CACHE_DIR}
                )
            container["volumeMounts"].append(
                {
                    "name": "cache-client",
                    "mountPath": catalog_render.cache_mount_dir(self.spec.engine),
                }
            )
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
                    **self._checksums(files),
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
                "initContainers": [self._catalog_init_container()],
                "containers": [container],
                "volumes": volumes,
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
            *(
                [self.config_map(f"{self.prefix}-cache-client", self.cache_files(), None)]
                if self.cache is not None
                else []
            ),
            *(
                [self.config_map(f"{self.prefix}-access-rules", self.access_files(), None)]
                if spec.access_rules is not None
                else []
            ),
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


def render_cluster(
    spec: ClusterSpec,
    *,
    vpc_cidr: str,
    registry_mirror: str | None = None,
    catalogs: Sequence[CatalogSpec] = (),
    cache: CacheSpec | None = None,
) -> list[KubeObject]:
    """The Kubernetes objects of one cluster, with the catalogs it attaches and the cache it reads
    through (resolved from the desired state). Raises ``ValueError`` subclasses for an unknown
    instance type, an unsupported engine version or a catalog property the engine lacks."""
    return _ClusterRenderer(
        spec, vpc_cidr=vpc_cidr, registry_mirror=registry_mirror, catalogs=catalogs, cache=cache
    ).render()
