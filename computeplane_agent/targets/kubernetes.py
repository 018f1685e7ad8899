"""The real target: the Kubernetes API through the official client, server-side apply only.

Requests are built with the client's ``ApiClient`` (auth, TLS, host from in-cluster config or a
kubeconfig) against explicit REST paths, because server-side apply is one generic PATCH whatever
the kind — no per-kind generated method needed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from computeplane_agent.contract import AGENT_NAMESPACE, WORKLOAD_NAMESPACE
from computeplane_agent.coordinator import CoordinatorLoad, read_load
from computeplane_agent.render.gateway import NAME as GATEWAY_NAME
from computeplane_agent.render.gateway import PORT as GATEWAY_PORT
from computeplane_agent.targets.base import (
    APPLIED_HASH_ANNOTATION,
    REPLICATED_KINDS,
    CacheUsage,
    CatalogStatementError,
    KubeObject,
    ManagedObject,
    ObjectRef,
    Readiness,
    TargetError,
)

FIELD_MANAGER = "lakeplane-agent"
APPLY_PATCH = "application/apply-patch+yaml"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=lakeplane-agent"


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str
    namespaced: bool = True

    @property
    def base(self) -> str:
        # Core group objects live under /api/v1, every other group under /apis/<group>/<version>.
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"


KINDS: dict[str, Kind] = {
    "ConfigMap": Kind("v1", "configmaps"),
    "Secret": Kind("v1", "secrets"),
    "Service": Kind("v1", "services"),
    "ServiceAccount": Kind("v1", "serviceaccounts"),
    "Namespace": Kind("v1", "namespaces", namespaced=False),
    "Deployment": Kind("apps/v1", "deployments"),
    "StatefulSet": Kind("apps/v1", "statefulsets"),
    "Job": Kind("batch/v1", "jobs"),
    "CronJob": Kind("batch/v1", "cronjobs"),
    "PodDisruptionBudget": Kind("policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networkpolicies"),
    "Role": Kind("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Kind("rbac.authorization.k8s.io/v1", "rolebindings"),
    "ClusterRole": Kind("rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": Kind(
        "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False
    ),
}
# What the loop renders and may prune; the agent's own install objects are never pruned by it.
PRUNABLE_KINDS = (
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "Secret",
    "PodDisruptionBudget",
    "NetworkPolicy",
)
TRINO_PORT = 8080
TRINO_USER = "lakeplane-agent"
# A CREATE/DROP CATALOG finishes in a few polls; the bound only stops a coordinator that never
# answers "finished" from holding the loop.
MAX_STATEMENT_POLLS = 600


def object_path(ref: ObjectRef) -> str:
    kind = KINDS.get(ref.kind)
    if kind is None or kind.api_version != ref.api_version:
        raise TargetError(f"unsupported kind {ref.api_version}/{ref.kind}")
    if kind.namespaced:
        if not ref.namespace:
            raise TargetError(f"{ref} needs a namespace")
        return f"{kind.base}/namespaces/{ref.namespace}/{kind.plural}/{ref.name}"
    return f"{kind.base}/{kind.plural}/{ref.name}"


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else the given (or default) kubeconfig."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            pass
    configuration = client.Configuration()
    # The kubernetes package's config loaders carry no annotations.
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    return client.ApiClient(configuration)


class KubernetesTarget:
    name = "kubernetes"

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespaces: Sequence[str] = (WORKLOAD_NAMESPACE,),
        request_timeout: float = 30.0,
    ) -> None:
        self.api = api_client
        self.namespaces = tuple(namespaces)
        self.request_timeout = request_timeout

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: KubeObject | None = None,
        content_type: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*serialized, _request_timeout=self.request_timeout)
            raw = response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            return exc.status or 0, None
        except Exception as exc:  # urllib3 connection errors and timeouts
            raise TargetError(f"{method} {path}: {exc}") from exc
        payload = json.loads(raw) if raw else None
        return response.status, payload

    def apply(self, objects: Sequence[KubeObject]) -> None:
        for obj in objects:
            path = object_path(ObjectRef.of(obj))
            status, payload = self._call(
                "PATCH",
                path,
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                body=obj,
                content_type=APPLY_PATCH,
            )
            if not 200 <= status < 300:
                detail = payload.get("message") if isinstance(payload, dict) else None
                raise TargetError(f"apply {path} answered {status}: {detail or ''}".strip())

    def list_managed(self) -> list[ManagedObject]:
        found: list[ManagedObject] = []
        for namespace in self.namespaces:
            for kind_name in PRUNABLE_KINDS:
                kind = KINDS[kind_name]
                path = f"{kind.base}/namespaces/{namespace}/{kind.plural}"
                status, payload = self._call(
                    "GET", path, query=[("labelSelector", MANAGED_SELECTOR)]
                )
                if status != 200 or not isinstance(payload, dict):
                    raise TargetError(f"list {path} answered {status}")
                for item in payload.get("items", []):
                    metadata = item.get("metadata", {})
                    ref = ObjectRef(kind.api_version, kind_name, namespace, metadata["name"])
                    applied = (metadata.get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
                    found.append(ManagedObject(ref, applied))
        return found

    def delete(self, ref: ObjectRef) -> None:
        path = object_path(ref)
        status, _ = self._call(
            "DELETE", path, query=[("propagationPolicy", "Background")], content_type=None
        )
        if status == 404:
            return  # already gone
        if not 200 <= status < 300:
            raise TargetError(f"delete {path} answered {status}")

    def readiness(self, ref: ObjectRef) -> Readiness:
        status, payload = self._call("GET", object_path(ref))
        if status == 404:
            return Readiness(exists=False, ready=False)
        if status != 200 or not isinstance(payload, dict):
            raise TargetError(f"get {ref} answered {status}")
        if ref.kind == "Job":
            return _job_readiness(payload)
        if ref.kind not in REPLICATED_KINDS:
            return Readiness(exists=True, ready=True)
        spec, state = payload.get("spec", {}), payload.get("status", {})
        desired = int(spec.get("replicas", 1))
        ready = int(state.get("readyReplicas", 0))
        updated = int(state.get("updatedReplicas", 0))
        observed = state.get("observedGeneration", 0) >= payload["metadata"].get("generation", 0)
        is_ready = observed and ready >= desired and updated >= desired
        if ref.kind == "StatefulSet" and state.get("updateRevision"):
            is_ready = is_ready and state.get("currentRevision") == state.get("updateRevision")
        return Readiness(True, is_ready, min(ready, desired), desired)

    def gateway_url(self) -> str:
        # The agent runs in the cluster: the gateway's Service by its DNS name.
        return f"http://{GATEWAY_NAME}.{WORKLOAD_NAMESPACE}.svc:{GATEWAY_PORT}"

    def gateway_endpoint(self) -> str | None:
        """The internal load balancer's address, once AWS has given the Service one."""
        ref = ObjectRef("v1", "Service", WORKLOAD_NAMESPACE, GATEWAY_NAME)
        status, payload = self._call("GET", object_path(ref))
        if status != 200 or not isinstance(payload, dict):
            return None
        ingress = (payload.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0]
        host = ingress.get("hostname") or ingress.get("ip")
        return f"http://{host}:{GATEWAY_PORT}" if host else None

    def run_catalog_statements(
        self, cluster_id: str, coordinator_service: str, statements: Sequence[str]
    ) -> None:
        base = f"http://{coordinator_service}.{WORKLOAD_NAMESPACE}.svc:{TRINO_PORT}"
        for statement in statements:
            self._run_statement(base, statement)

    def _http_json(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:  # noqa: S310 - in-cluster http
                payload = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CatalogStatementError(f"{request.full_url}: {exc}") from None
        return payload if isinstance(payload, dict) else {}

    def _run_statement(self, base: str, statement: str) -> None:
        """Trino's client protocol: POST the statement, then follow ``nextUri`` until the query
        has no next page; an ``error`` in any page fails it."""
        headers = {"X-Trino-User": TRINO_USER, "Content-Type": "text/plain"}
        request = urllib.request.Request(  # noqa: S310 - the coordinator's in-cluster URL
            f"{base}/v1/statement", data=statement.encode(), headers=headers, method="POST"
        )
        page = self._http_json(request)
        for _ in range(MAX_STATEMENT_POLLS):
            error = page.get("error")
            if isinstance(error, dict):
                raise CatalogStatementError(str(error.get("message", "statement failed"))[:500])
            next_uri = page.get("nextUri")
            if not isinstance(next_uri, str):
                return
            page = self._http_json(
                urllib.request.Request(next_uri, headers={"X-Trino-User": TRINO_USER})  # noqa: S310
            )
        raise CatalogStatementError("the coordinator did not finish the statement")

    def coordinator_load(self, cluster_id: str, coordinator_service: str) -> CoordinatorLoad | None:
        return read_load(
            f"http://{coordinator_service}.{WORKLOAD_NAMESPACE}.svc:{TRINO_PORT}",
            timeout=self.request_timeout,
        )

    def cache_usage(self, cache_id: str, master_url: str) -> CacheUsage | None:
        """Capacity and use from ``/api/v1/master/info``; the hit ratio from the cluster-wide
        read counters of ``/api/v1/master/metrics`` (bytes served by workers over all bytes read).
        None when the master cannot be reached — usage is informative, never a failure."""
        try:
            info = self._http_json(urllib.request.Request(f"{master_url}/api/v1/master/info"))  # noqa: S310
            capacity = info.get("capacity") or {}
            used, total = int(capacity.get("used", 0)), int(capacity.get("total", 0))
        except (CatalogStatementError, TypeError, ValueError):
            return None
        hit_ratio = None
        try:
            metrics = self._http_json(
                urllib.request.Request(f"{master_url}/api/v1/master/metrics")  # noqa: S310
            )
            cached = sum(
                _metric(metrics, k) for k in ("Cluster.BytesReadLocal", "Cluster.BytesReadRemote")
            )
            ufs = _metric(metrics, "Cluster.BytesReadUfsAll")
            if cached + ufs > 0:
                hit_ratio = cached / (cached + ufs)
        except CatalogStatementError:
            pass
        return CacheUsage(max(used, 0), max(total, 0), hit_ratio)


def _metric(metrics: dict[str, Any], name: str) -> float:
    value = metrics.get(name)
    if isinstance(value, dict):
        value = value.get("value", 0)
    try:
        return max(float(value or 0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _job_readiness(payload: dict[str, Any]) -> Readiness:
    state = payload.get("status", {})
    if int(state.get("succeeded", 0) or 0) >= 1:
        return Readiness(True, True)
    for condition in state.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            reason = condition.get("reason") or "Failed"
            return Readiness(True, False, message=f"job failed: {reason}")
    return Readiness(True, False)


__all__ = ["AGENT_NAMESPACE", "KubernetesTarget", "load_api_client", "object_path"]
