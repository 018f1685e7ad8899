"""Small builders shared by the metastore, cache and catalog renderers (plain dicts)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from computeplane_agent.contract import WORKLOAD_NAMESPACE

KubeObject = dict[str, Any]

MANAGED_BY = "lakeplane-agent"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_METASTORE = "lakeplane.io/metastore"
LABEL_CACHE = "lakeplane.io/cache"


def dns_name(resource_id: str) -> str:
    """DNS-1123 name prefix of a resource's objects (``ms_01hv…`` → ``lp-ms-01hv…``)."""
    return "lp-" + resource_id.replace("_", "-")


def checksum(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def properties(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def hadoop_xml(values: dict[str, str]) -> str:
    """A Hadoop-style ``*-site.xml`` (values are escaped; none of them is ever a secret)."""
    from xml.sax.saxutils import escape

    rows = "".join(
        f"  <property>\n    <name>{escape(k)}</name>\n    <value>{escape(v)}</value>\n"
        "  </property>\n"
        for k, v in values.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{rows}</configuration>\n'


def metadata(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": WORKLOAD_NAMESPACE, "labels": dict(labels)}


def config_map(name: str, labels: dict[str, str], data: dict[str, str]) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, labels),
        "data": data,
    }


def secret(name: str, labels: dict[str, str], values: dict[str, str]) -> KubeObject:
    """A Secret the agent writes from values it resolved inside the VPC (``stringData``, so the
    sandbox's files show exactly what a pod would read)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, labels),
        "type": "Opaque",
        "stringData": dict(sorted(values.items())),
    }


def pdb(name: str, labels: dict[str, str], selector: dict[str, str]) -> KubeObject:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}


def secret_env(name: str, secret_name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
