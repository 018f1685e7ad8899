"""Kubernetes objects for the compute plane's query gateway (``computeplane_agent.gateway``).

The gateway's config file (``gateway.json``) is rendered from ``DesiredState.gateway`` and the
plane's clusters; it lives in a ConfigMap mounted as a directory (not ``subPath``), so the kubelet
swaps the file in place and the running replicas reload it without a restart. The Deployment
therefore carries no config checksum: a routing change must not roll the pods.

The replicas share the HMAC key that signs follow-up URIs (any replica serves any ``nextUri``);
it is a Secret the agent writes (``gateway_key_secret``), like every Secret it resolves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from computeplane_agent.contract import (
    AGENT_NAMESPACE,
    WORKLOAD_NAMESPACE,
    ClusterSpec,
    GatewaySpec,
)
from computeplane_agent.install import AGENT_LISTEN_PORT, AGENT_NAME, SYSTEM_NODE_SELECTOR
from computeplane_agent.render.engines import HTTP_PORT
from computeplane_agent.render.objects import (
    CONTAINER_SECURITY,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    POD_SECURITY,
    KubeObject,
    config_map,
    dns_name,
    metadata,
    pdb,
    secret,
    secret_env,
)

NAME = "lakeplane-gateway"
PORT = 8080
CONFIG_DIR = "/etc/lakeplane-gateway"
CONFIG_FILE = "gateway.json"
KEY_SECRET = f"{NAME}-hmac"
KEY_ENV = "LAKEPLANE_GATEWAY_HMAC_KEY"
DEFAULT_AGENT_URL = f"http://{AGENT_NAME}.{AGENT_NAMESPACE}.svc:{AGENT_LISTEN_PORT}"
# An NLB inside the VPC: the gateway is never on the internet.
SERVICE_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
}


@dataclass(frozen=True)
class GatewayEnvironment:
    """What the rendering needs beyond the desired state: the image (the agent's own, which
    carries the gateway) and where the gateway reaches the agent."""

    image: str = ""
    agent_url: str = DEFAULT_AGENT_URL


def _labels() -> dict[str, str]:
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        "app.kubernetes.io/name": NAME,
        LABEL_COMPONENT: "gateway",
    }


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, LABEL_COMPONENT: "gateway"}


def coordinator_url(cluster_id: str) -> str:
    """The cluster's coordinator Service (``render.cluster``) as the gateway reaches it."""
    return f"http://{dns_name(cluster_id)}-coordinator.{WORKLOAD_NAMESPACE}.svc:{HTTP_PORT}"


def cluster_state(cluster: ClusterSpec) -> str:
    """The gateway config's view of a cluster: draining wins (its queries finish), else running
    or stopped (a stopped cluster is woken by a query)."""
    if cluster.draining:
        return "draining"
    return cluster.state


def _match(spec: Any) -> dict[str, Any]:
    fields = {
        "user": spec.user,
        "source": spec.source,
        "client_tags": list(spec.client_tags),
        "headers": dict(spec.headers),
        "catalog": spec.catalog,
        "schema": spec.schema_name,
    }
    return {k: v for k, v in fields.items() if v not in (None, [], {})}


def gateway_document(
    spec: GatewaySpec, clusters: Sequence[ClusterSpec], *, agent_url: str | None
) -> dict[str, Any]:
    """The gateway's config document (``computeplane_agent.gateway.config.parse_config``).

    A group member missing from ``clusters`` (deleted since) is left out; a group left empty is
    left out with the rules, fallbacks and default that name it, so the file always loads (a
    file that did not would leave the replicas on an older one).
    """
    by_id = {c.id: c for c in clusters}
    groups = []
    for g in spec.routing_groups:
        members = [by_id[cid] for cid in g.clusters if cid in by_id]
        if members:
            groups.append((g, members))
    published = {g.name for g, _ in groups}
    doc: dict[str, Any] = {
        "groups": [
            {
                "name": g.name,
                "clusters": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "engine": c.engine,
                        "url": coordinator_url(c.id),
                        "state": cluster_state(c),
                        "cache": c.cache,
                    }
                    for c in members
                ],
                **({"fallback": g.fallback} if g.fallback in published else {}),
                "prefer_cache": g.prefer_cache,
            }
            for g, members in groups
        ],
        "rules": [
            {"name": r.name, "priority": r.priority, "group": r.group, "match": _match(r.match)}
            for r in spec.rules
            if r.group in published
        ],
        **({"default_group": spec.default_group} if spec.default_group in published else {}),
        "health": spec.health.model_dump(),
        "wake": spec.wake.model_dump(),
        "query_text": spec.query_text,
        "agent_url": agent_url,
        "listen": {"host": "0.0.0.0", "port": PORT},  # noqa: S104 - the Service's pods, in the VPC
    }
    # A content hash: the same routing is the same version on every replica and every render.
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return {"version": hashlib.sha256(body).hexdigest()[:16], **doc}


def gateway_key_secret(key: bytes) -> KubeObject:
    """The shared HMAC key of the replicas (written by the agent, never in the desired state)."""
    return secret(KEY_SECRET, _labels(), {"key": key.decode()})


def render_gateway(
    spec: GatewaySpec,
    clusters: Sequence[ClusterSpec],
    *,
    vpc_cidr: str,
    environment: GatewayEnvironment,
) -> list[KubeObject]:
    """ConfigMap, Service, Deployment, PodDisruptionBudget and NetworkPolicy of the gateway (its
    key Secret is written by the agent); nothing when the gateway is off."""
    if not spec.enabled:
        return []
    labels = _labels()
    document = gateway_document(spec, clusters, agent_url=environment.agent_url)
    config = json.dumps(document, indent=2, sort_keys=True) + "\n"
    container = {
        "name": "gateway",
        "image": environment.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["gateway", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "env": [secret_env(KEY_ENV, KEY_SECRET, "key")],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/_lakeplane/v1/healthz", "port": "http"},
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/_lakeplane/v1/healthz", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {**CONTAINER_SECURITY, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    return [
        config_map(f"{NAME}-config", labels, {CONFIG_FILE: config}),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**metadata(NAME, labels), "annotations": dict(SERVICE_ANNOTATIONS)},
            "spec": {
                "type": "LoadBalancer",
                "selector": _selector(),
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(NAME, labels),
            "spec": {
                "replicas": spec.replicas,
                "selector": {"matchLabels": _selector()},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "enableServiceLinks": False,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            **POD_SECURITY,
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                        },
                        # Lakeplane's own pods run on the untainted system nodes.
                        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
                        # Replicas on different nodes: one node lost is one replica lost.
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "kubernetes.io/hostname",
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": _selector()},
                            }
                        ],
                        "containers": [container],
                        "volumes": [{"name": "config", "configMap": {"name": f"{NAME}-config"}}],
                    },
                },
            },
        },
        # One replica at a time: with two, a node drain never leaves the plane without one.
        pdb(NAME, labels, _selector()),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(NAME, labels),
            "spec": {
                "podSelector": {"matchLabels": _selector()},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": vpc_cidr}}],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    }
                ],
            },
        },
    ]
