"""The agent's own install manifests — one function used by the control plane's bootstrap step,
printed by ``python -m computeplane_agent install-manifests`` and exported as the Kustomize base
``infra/kustomize/computeplane-agent``.

RBAC is namespaced only: the agent manages objects in ``lakeplane-workloads`` and reads its own
namespace; it has no cluster-wide rights.
"""

from __future__ import annotations

from typing import Any

from computeplane_agent import __version__
from computeplane_agent.contract import AGENT_NAMESPACE, WORKLOAD_NAMESPACE
from computeplane_agent.metrics import DEFAULT_METRICS_PORT

KubeObject = dict[str, Any]
AGENT_NAME = "lakeplane-agent"
# The agent's listener for the plane's gateway (computeplane_agent.listener).
AGENT_LISTEN_PORT = 8091
DEFAULT_IMAGE = f"ghcr.io/lakeplane/computeplane-agent:{__version__}"
LABELS = {"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/part-of": "lakeplane"}
# Every other node group is tainted for one cluster or cache; the compute plane's system node
# group (controlplane/providers/aws/reconcilers/systemnodes.py) carries this label and no taint,
# and Lakeplane's own pods (the agent, managed metastores) are pinned to it.
SYSTEM_NODE_GROUP = "system"
# General purpose, 2 vCPU / 8 GiB: room for the agent (128 MiB), the gateway and a few metastores
# (~1-2 GiB each) per node; Presto and Alluxio never run here, so nothing bigger is needed. The
# control plane creates the group with it; the agent reports metastore replicas against it.
SYSTEM_INSTANCE_TYPE = "m6i.large"
SYSTEM_NODE_SELECTOR = {"lakeplane.io/node-group": SYSTEM_NODE_GROUP}


def _meta(name: str, namespace: str | None = AGENT_NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def install_manifests(
    *,
    control_plane_url: str,
    bootstrap_token: str = "",
    image: str = DEFAULT_IMAGE,
    poll_seconds: int = 30,
) -> list[KubeObject]:
    """Objects in apply order. ``bootstrap_token`` empty leaves the Secret for the installer to
    fill (the Kustomize base); the control plane passes the one-time token it issued."""
    rules = [
        {"apiGroups": [""], "resources": ["configmaps", "services", "secrets"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["apps"], "resources": ["deployments"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(AGENT_NAMESPACE, None)},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(WORKLOAD_NAMESPACE, None)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(AGENT_NAME)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(AGENT_NAME, WORKLOAD_NAMESPACE),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(AGENT_NAME, WORKLOAD_NAMESPACE),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": AGENT_NAME,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": AGENT_NAME, "namespace": AGENT_NAMESPACE}
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{AGENT_NAME}-config"),
            "data": {
                "LAKEPLANE_CONTROL_PLANE_URL": control_plane_url,
                "LAKEPLANE_TARGET": "kubernetes",
                "LAKEPLANE_POLL_SECONDS": str(poll_seconds),
                "LAKEPLANE_CREDENTIAL_FILE": "/var/run/lakeplane/credential.json",
                "LAKEPLANE_METRICS_PORT": str(DEFAULT_METRICS_PORT),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(f"{AGENT_NAME}-credential"),
            "type": "Opaque",
            "stringData": {"bootstrap-token": bootstrap_token},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(AGENT_NAME),
            "spec": {
                # One agent per compute plane: two would race on the same objects.
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                "template": {
                    "metadata": {
                        "labels": dict(LABELS),
                        # The usual annotations a Prometheus in the VPC discovers pods by.
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(DEFAULT_METRICS_PORT),
                            "prometheus.io/path": "/metrics",
                        },
                    },
                    "spec": {
                        "serviceAccountName": AGENT_NAME,
                        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "agent",
                                "image": image,
                                "args": ["run"],
                                # Prometheus in the VPC scrapes the agent here; the gateway
                                # posts wakes and query records to the listener.
                                "ports": [
                                    {
                                        "name": "metrics",
                                        "containerPort": DEFAULT_METRICS_PORT,
                                        "protocol": "TCP",
                                    },
                                    {
                                        "name": "listener",
                                        "containerPort": AGENT_LISTEN_PORT,
                                        "protocol": "TCP",
                                    },
                                ],
                                "envFrom": [{"configMapRef": {"name": f"{AGENT_NAME}-config"}}],
                                "env": [
                                    {
                                        "name": "LAKEPLANE_BOOTSTRAP_TOKEN",
                                        "valueFrom": {
                                            "secretKeyRef": {
                                                "name": f"{AGENT_NAME}-credential",
                                                "key": "bootstrap-token",
                                            }
                                        },
                                    }
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "128Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "credential", "mountPath": "/var/run/lakeplane"}
                                ],
                            }
                        ],
                        "volumes": [{"name": "credential", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            # The address the gateway reaches the agent's listener at (render/gateway.py).
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(AGENT_NAME),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": AGENT_NAME},
                "ports": [
                    {
                        "name": "listener",
                        "port": AGENT_LISTEN_PORT,
                        "targetPort": "listener",
                        "protocol": "TCP",
                    }
                ],
            },
        },
    ]
