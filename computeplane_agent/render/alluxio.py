"""Kubernetes objects for an Alluxio 2.9 cache layer (the seeds' "data orchestration" layer).

Shape follows Alluxio's own Helm chart for 2.9: a master StatefulSet (master + job master, the
journal on a PersistentVolumeClaim) and a worker StatefulSet (worker + job worker; the job service
runs ``distributedLoad``). Workers run only on the cache's node group (label + toleration of its
NoSchedule taint), one per node. The master and the policy Jobs run on system nodes.

Storage tier per medium — why these volumes:
- ``mem``: an ``emptyDir`` with ``medium: Memory`` of ``size_gb_per_worker`` (tmpfs, counted in
  the container's memory, so the limit includes it); alias MEM.
- ``ssd``: an EBS volume per worker through ``volumeClaimTemplates`` (the EKS default storage
  class): network-attached, it follows the worker's StatefulSet identity to a replacement node,
  so a warm cache survives a node replacement; alias SSD.
- ``nvme``: the node's instance-store NVMe through ``hostPath`` under the EKS AMI's local-disk
  mount (``/mnt/k8s-disks``, RAID0 of all instance-store disks). Instance store is only reachable
  on its own node; hostPath needs no local-volume provisioner and one worker per node (required
  anti-affinity) keeps the directory exclusive; alias SSD (Alluxio has no NVMe alias).

A cache belongs to the compute plane, not to a cluster: nothing here carries a cluster label, so
stopping or deleting clusters never prunes it.
"""

from __future__ import annotations

from typing import Any

from computeplane_agent.contract import WORKLOAD_NAMESPACE, CacheSpec
from computeplane_agent.install import SYSTEM_NODE_SELECTOR
from computeplane_agent.render.objects import (
    CONTAINER_SECURITY,
    LABEL_CACHE,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    KubeObject,
    checksum,
    config_map,
    dns_name,
    metadata,
    pdb,
    properties,
)
from computeplane_agent.versions import component_release

NODE_GROUP_LABEL = "lakeplane.io/node-group"
# Alluxio 2.9 default ports.
MASTER_RPC_PORT = 19998
MASTER_WEB_PORT = 19999
JOB_MASTER_RPC_PORT = 20001
JOB_MASTER_WEB_PORT = 20002
WORKER_RPC_PORT = 29999
WORKER_WEB_PORT = 30000
JOB_WORKER_RPC_PORT = 30001
JOB_WORKER_DATA_PORT = 30002
JOB_WORKER_WEB_PORT = 30003
CONF_FILE = "/opt/alluxio/conf/alluxio-site.properties"
JOURNAL_DIR = "/journal"
TIER_DIR = "/mnt/alluxio-tier"
NVME_HOST_DIR = "/mnt/k8s-disks/alluxio"
JOURNAL_SIZE = "20Gi"
ALLUXIO_UID = 1000  # the alluxio/alluxio image's user
# Heap and direct memory of the worker JVMs on top of a memory tier.
_WORKER_OVERHEAD_GIB = 4


def _labels(spec: CacheSpec, component: str | None = None) -> dict[str, str]:
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CACHE: spec.id,
        "app.kubernetes.io/name": "alluxio",
        "app.kubernetes.io/instance": dns_name(spec.id),
    }
    if component:
        labels[LABEL_COMPONENT] = component
    return labels


def _selector(spec: CacheSpec, component: str) -> dict[str, str]:
    return {LABEL_CACHE: spec.id, LABEL_COMPONENT: component}


def master_service_name(cache_id: str) -> str:
    return f"{dns_name(cache_id)}-master"


def master_hostname(cache_id: str) -> str:
    """The (single) master's stable DNS name through the headless governing Service."""
    service = master_service_name(cache_id)
    return f"{service}-0.{service}.{WORKLOAD_NAMESPACE}.svc.cluster.local"


def master_address(cache_id: str) -> str:
    """``host:port`` of the master's RPC endpoint, for clients (Presto/Trino catalogs)."""
    return f"{master_hostname(cache_id)}:{MASTER_RPC_PORT}"


def master_web_url(cache_id: str) -> str:
    return f"http://{master_hostname(cache_id)}:{MASTER_WEB_PORT}"


def client_properties(cache_id: str) -> dict[str, str]:
    """What an Alluxio client (an engine pod, a policy Job) needs to find the cluster."""
    host = master_hostname(cache_id)
    return {
        "alluxio.master.hostname": host,
        "alluxio.master.rpc.port": str(MASTER_RPC_PORT),
        "alluxio.job.master.hostname": host,
        "alluxio.job.master.rpc.port": str(JOB_MASTER_RPC_PORT),
    }


def _tier_alias(spec: CacheSpec) -> str:
    return "MEM" if spec.medium == "mem" else "SSD"


def site_properties(spec: CacheSpec) -> dict[str, str]:
    values = {
        **client_properties(spec.id),
        "alluxio.master.web.port": str(MASTER_WEB_PORT),
        "alluxio.master.journal.type": "UFS",
        "alluxio.master.journal.folder": JOURNAL_DIR,
        "alluxio.worker.rpc.port": str(WORKER_RPC_PORT),
        "alluxio.worker.web.port": str(WORKER_WEB_PORT),
        "alluxio.worker.tieredstore.levels": "1",
        "alluxio.worker.tieredstore.level0.alias": _tier_alias(spec),
        "alluxio.worker.tieredstore.level0.dirs.path": TIER_DIR,
        "alluxio.worker.tieredstore.level0.dirs.mediumtype": _tier_alias(spec),
        "alluxio.worker.tieredstore.level0.dirs.quota": f"{spec.size_gb_per_worker}GB",
        "alluxio.user.file.readtype.default": "CACHE",
        # ASYNC_THROUGH acknowledges a write once cached and persists it in the background
        # (write-back); CACHE_THROUGH persists synchronously.
        "alluxio.user.file.writetype.default": (
            "ASYNC_THROUGH" if spec.policies.write_back else "CACHE_THROUGH"
        ),
    }
    if spec.medium == "mem":
        values["alluxio.worker.ramdisk.size"] = f"{spec.size_gb_per_worker}GB"
    root = next((m for m in spec.mounts if m.path == "/"), None)
    if root is not None:
        values["alluxio.master.mount.table.root.ufs"] = root.uri
    return values


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _policy_script(spec: CacheSpec) -> str:
    """Mounts, pins and TTLs, each made idempotent (a re-run changes nothing)."""
    lines = ["set -e", "until alluxio fs ls / >/dev/null 2>&1; do sleep 5; done"]
    for mount in spec.mounts:
        if mount.path == "/":
            continue
        path, uri = _quote(mount.path), _quote(mount.uri)
        lines.append(
            f'alluxio fs mount | grep -q " on {mount.path} " || alluxio fs mount {path} {uri}'
        )
    for pinned in spec.policies.pin:
        lines.append(f"alluxio fs pin {_quote(pinned)}")
    for ttl in spec.policies.ttl:
        millis = ttl.seconds * 1000
        lines.append(f"alluxio fs setTtl --action {ttl.action} {_quote(ttl.path)} {millis}")
    return "\n".join(lines) + "\n"


def _load_script(path: str) -> str:
    # The path exists once the policy Job mounted it; distributedLoad runs on the job service.
    quoted = _quote(path)
    return (
        f"until alluxio fs test -e {quoted}; do sleep 10; done\n"
        f"alluxio fs distributedLoad {quoted}\n"
    )


class _CacheRenderer:
    def __init__(self, spec: CacheSpec, registry_mirror: str | None) -> None:
        self.spec = spec
        self.prefix = dns_name(spec.id)
        self.image = component_release("alluxio", spec.version).image(registry_mirror)
        self.site = properties(site_properties(spec))
        self.config_name = f"{self.prefix}-config"

    def _container(self, name: str, args: list[str], ports: dict[str, int]) -> dict[str, Any]:
        return {
            "name": name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["tini", "--", "/entrypoint.sh"],
            "args": args,
            "ports": [
                {"name": port_name, "containerPort": port, "protocol": "TCP"}
                for port_name, port in ports.items()
            ],
            "volumeMounts": [
                {"name": "config", "mountPath": CONF_FILE, "subPath": "alluxio-site.properties"}
            ],
            "securityContext": CONTAINER_SECURITY,
        }

    def _pod_spec(self, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "securityContext": {
                "seccompProfile": {"type": "RuntimeDefault"},
                "fsGroup": ALLUXIO_UID,
            },
            "containers": containers,
            "volumes": [{"name": "config", "configMap": {"name": self.config_name}}],
            **extra,
        }

    def _template(self, component: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "metadata": {
                "labels": _labels(self.spec, component),
                "annotations": {"lakeplane.io/config-checksum": checksum(self.site)},
            },
            "spec": pod_spec,
        }

    def _service(self, name: str, component: str, ports: dict[str, int]) -> KubeObject:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(name, _labels(self.spec, component)),
            "spec": {
                # Headless: the StatefulSet's governing Service gives each pod a stable name,
                # and the master resolves its own name before it is ready.
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": _selector(self.spec, component),
                "ports": [
                    {"name": n, "port": p, "targetPort": n, "protocol": "TCP"}
                    for n, p in ports.items()
                ],
            },
        }

    def master(self) -> KubeObject:
        master = self._container(
            "alluxio-master",
            ["master-only", "--no-format"],
            {"rpc": MASTER_RPC_PORT, "web": MASTER_WEB_PORT},
        )
        master["volumeMounts"].append({"name": "journal", "mountPath": JOURNAL_DIR})
        master["readinessProbe"] = {"tcpSocket": {"port": "rpc"}, "periodSeconds": 10}
        master["resources"] = {
            "requests": {"cpu": "1", "memory": "4Gi"},
            "limits": {"memory": "4Gi"},
        }
        job_master = self._container(
            "alluxio-job-master",
            ["job-master"],
            {"job-rpc": JOB_MASTER_RPC_PORT, "job-web": JOB_MASTER_WEB_PORT},
        )
        job_master["resources"] = {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"memory": "1Gi"},
        }
        # A fresh journal volume is formatted once; the marker keeps a restart from wiping it.
        marker = f"{JOURNAL_DIR}/.lakeplane-formatted"
        format_journal = {
            "name": "format-journal",
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": [
                "sh",
                "-c",
                f"[ -f {marker} ] || (alluxio formatJournal && touch {marker})",
            ],
            "volumeMounts": [
                *master["volumeMounts"],
            ],
            "securityContext": CONTAINER_SECURITY,
        }
        name = master_service_name(self.spec.id)
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(name, _labels(self.spec, "master")),
            "spec": {
                "serviceName": name,
                "replicas": 1,
                "selector": {"matchLabels": _selector(self.spec, "master")},
                "template": self._template(
                    "master",
                    # Lakeplane's own pods run on the system nodes; the cache's node group
                    # holds exactly one worker per node.
                    self._pod_spec(
                        [master, job_master],
                        initContainers=[format_journal],
                        nodeSelector=dict(SYSTEM_NODE_SELECTOR),
                    ),
                ),
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "journal"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": JOURNAL_SIZE}},
                        },
                    }
                ],
            },
        }

    def _tier_volume(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(pod volumes, volume claim templates) of the worker's storage tier."""
        size = f"{self.spec.size_gb_per_worker}Gi"
        if self.spec.medium == "mem":
            return [{"name": "tier", "emptyDir": {"medium": "Memory", "sizeLimit": size}}], []
        if self.spec.medium == "nvme":
            host = {"path": NVME_HOST_DIR, "type": "DirectoryOrCreate"}
            return [{"name": "tier", "hostPath": host}], []
        claim = {
            "metadata": {"name": "tier"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
        return [], [claim]

    def worker(self) -> KubeObject:
        spec = self.spec
        worker = self._container(
            "alluxio-worker",
            ["worker-only", "--no-format"],
            {"rpc": WORKER_RPC_PORT, "web": WORKER_WEB_PORT},
        )
        # Clients reach a worker by its pod IP (what Alluxio's chart does).
        worker["env"] = [
            {
                "name": "ALLUXIO_WORKER_HOSTNAME",
                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
            },
            {
                "name": "ALLUXIO_WORKER_CONTAINER_HOSTNAME",
                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
            },
        ]
        worker["volumeMounts"].append({"name": "tier", "mountPath": TIER_DIR})
        worker["readinessProbe"] = {"tcpSocket": {"port": "rpc"}, "periodSeconds": 10}
        memory_gib = _WORKER_OVERHEAD_GIB + (spec.size_gb_per_worker if spec.medium == "mem" else 0)
        worker["resources"] = {
            "requests": {"cpu": "1", "memory": f"{memory_gib}Gi"},
            "limits": {"memory": f"{memory_gib}Gi"},
        }
        job_worker = self._container(
            "alluxio-job-worker",
            ["job-worker"],
            {
                "job-rpc": JOB_WORKER_RPC_PORT,
                "job-data": JOB_WORKER_DATA_PORT,
                "job-web": JOB_WORKER_WEB_PORT,
            },
        )
        job_worker["env"] = list(worker["env"])
        job_worker["resources"] = {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"memory": "1Gi"},
        }
        volumes, claims = self._tier_volume()
        pod_spec = self._pod_spec(
            [worker, job_worker],
            nodeSelector={NODE_GROUP_LABEL: spec.node_group},
            tolerations=[
                {
                    "key": NODE_GROUP_LABEL,
                    "operator": "Equal",
                    "value": spec.node_group,
                    "effect": "NoSchedule",
                }
            ],
            affinity={
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": _selector(spec, "worker")},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
        )
        pod_spec["volumes"].extend(volumes)
        statefulset_spec: dict[str, Any] = {
            "serviceName": f"{self.prefix}-worker",
            "replicas": spec.workers,
            # Workers hold no state another worker needs: start and replace them in parallel.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": _selector(spec, "worker")},
            "template": self._template("worker", pod_spec),
        }
        if claims:
            statefulset_spec["volumeClaimTemplates"] = claims
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(f"{self.prefix}-worker", _labels(spec, "worker")),
            "spec": statefulset_spec,
        }

    def _job_pod(self, name: str, script: str) -> dict[str, Any]:
        container = {
            "name": name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script],
            "volumeMounts": [
                {"name": "config", "mountPath": CONF_FILE, "subPath": "alluxio-site.properties"}
            ],
            "securityContext": CONTAINER_SECURITY,
        }
        return {
            "metadata": {"labels": _labels(self.spec, "policy")},
            "spec": self._pod_spec([container], restartPolicy="OnFailure"),
        }

    def _job(self, name: str, script: str) -> KubeObject:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": metadata(name, _labels(self.spec, "policy")),
            "spec": {"backoffLimit": 20, "template": self._job_pod("policy", script)},
        }

    def policy_jobs(self) -> list[KubeObject]:
        # Jobs are immutable and run once: each is named by a hash of what it does, so a policy
        # change runs a new Job (the old one is pruned) and an unchanged one never re-runs.
        policy = _policy_script(self.spec)
        jobs = [self._job(f"{self.prefix}-policy-{checksum(policy)[:8]}", policy)]
        preload = self.spec.policies.preload
        if preload:
            script = "".join(_load_script(p.path) for p in preload)
            jobs.append(self._job(f"{self.prefix}-preload-{checksum(script)[:8]}", script))
        for entry in preload:
            if entry.schedule is None:
                continue
            script = _load_script(entry.path)
            digest = checksum([entry.path, entry.schedule])[:8]
            jobs.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "metadata": metadata(
                        f"{self.prefix}-preload-{digest}", _labels(self.spec, "policy")
                    ),
                    "spec": {
                        "schedule": entry.schedule,
                        "concurrencyPolicy": "Forbid",
                        "successfulJobsHistoryLimit": 1,
                        "failedJobsHistoryLimit": 1,
                        "jobTemplate": {
                            "spec": {
                                "backoffLimit": 3,
                                "template": self._job_pod("preload", script),
                            }
                        },
                    },
                }
            )
        return jobs

    def render(self) -> list[KubeObject]:
        spec = self.spec
        return [
            config_map(self.config_name, _labels(spec), {"alluxio-site.properties": self.site}),
            self._service(
                master_service_name(spec.id),
                "master",
                {
                    "rpc": MASTER_RPC_PORT,
                    "web": MASTER_WEB_PORT,
                    "job-rpc": JOB_MASTER_RPC_PORT,
                    "job-web": JOB_MASTER_WEB_PORT,
                },
            ),
            self._service(
                f"{self.prefix}-worker",
                "worker",
                {"rpc": WORKER_RPC_PORT, "web": WORKER_WEB_PORT, "job-rpc": JOB_WORKER_RPC_PORT},
            ),
            self.master(),
            self.worker(),
            pdb(master_service_name(spec.id), _labels(spec, "master"), _selector(spec, "master")),
            pdb(f"{self.prefix}-worker", _labels(spec, "worker"), _selector(spec, "worker")),
            *self.policy_jobs(),
        ]


def render_cache(spec: CacheSpec, *, registry_mirror: str | None = None) -> list[KubeObject]:
    """Every object of one Alluxio cache layer. Raises ``UnsupportedVersion``."""
    return _CacheRenderer(spec, registry_mirror).render()
