"""The kubernetes target sends what the API server expects, checked against a local HTTP recorder
that answers like the API server (200 on apply, 404 for unknown objects, lists by label)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from computeplane_agent.render import render_desired_state
from computeplane_agent.targets.base import ObjectRef, TargetError, with_applied_hash
from computeplane_agent.targets.kubernetes import KubernetesTarget, object_path
from tests.agent.factories import desired_state


class FakeApiServer:
    """Stores applied objects by path; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.refuse_with: int | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> tuple[str, dict[str, list[str]], bytes]:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "content_type": self.headers.get("Content-Type"),
                        "authorization": self.headers.get("Authorization"),
                        "body": body,
                    }
                )
                return url.path, parse_qs(url.query), body

            def do_PATCH(self) -> None:
                path, _, body = self._record()
                if recorder.refuse_with:
                    self._answer(recorder.refuse_with, {"kind": "Status", "message": "denied"})
                    return
                obj = json.loads(body)
                obj["metadata"]["generation"] = 1
                recorder.objects[path] = obj
                self._answer(200, obj)

            def do_GET(self) -> None:
                path, query, _ = self._record()
                if path in recorder.objects:
                    self._answer(200, recorder.objects[path])
                    return
                selector = query.get("labelSelector", [""])[0]
                key, _, value = selector.partition("=")
                items = [
                    o
                    for p, o in recorder.objects.items()
                    if p.rsplit("/", 1)[0] == path and o["metadata"]["labels"].get(key) == value
                ]
                if path.endswith("s") and not path.rsplit("/", 1)[-1].startswith("lp-"):
                    self._answer(200, {"kind": "List", "items": items})
                else:
                    self._answer(404, {"kind": "Status", "code": 404})

            def do_DELETE(self) -> None:
                path, _, _ = self._record()
                if recorder.objects.pop(path, None) is None:
                    self._answer(404, {"kind": "Status", "code": 404})
                else:
                    self._answer(200, {"kind": "Status", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def _target(server: FakeApiServer) -> KubernetesTarget:
    configuration = client.Configuration(host=server.url)
    configuration.api_key = {"BearerToken": "Bearer test-token-123"}
    return KubernetesTarget(client.ApiClient(configuration))


def test_apply_is_a_forced_server_side_apply_on_each_objects_path(
    api_server: FakeApiServer,
) -> None:
    objects = [with_applied_hash(o) for o in render_desired_state(desired_state())]
    _target(api_server).apply(objects)
    assert len(api_server.requests) == len(objects)
    for request, obj in zip(api_server.requests, objects, strict=True):
        assert request["method"] == "PATCH"
        assert request["content_type"] == "application/apply-patch+yaml"
        assert request["query"] == {"fieldManager": ["lakeplane-agent"], "force": ["true"]}
        assert request["authorization"] == "Bearer test-token-123"
        assert json.loads(request["body"]) == obj
    paths = [r["path"] for r in api_server.requests]
    ns = "/namespaces/lakeplane-workloads"
    prefix = "lp-cl-01hv0000000000000000000001"
    assert f"/api/v1{ns}/configmaps/{prefix}-coordinator-config" in paths
    assert f"/api/v1{ns}/services/{prefix}-coordinator" in paths
    assert f"/apis/apps/v1{ns}/deployments/{prefix}-worker" in paths
    assert f"/apis/policy/v1{ns}/poddisruptionbudgets/{prefix}-worker" in paths
    assert f"/apis/networking.k8s.io/v1{ns}/networkpolicies/{prefix}-coordinator" in paths


def test_cluster_scoped_and_unknown_kinds() -> None:
    ns = ObjectRef("v1", "Namespace", None, "lakeplane-system")
    assert object_path(ns) == "/api/v1/namespaces/lakeplane-system"
    role = ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", None, "lakeplane-agent")
    assert object_path(role) == "/apis/rbac.authorization.k8s.io/v1/clusterroles/lakeplane-agent"
    with pytest.raises(TargetError):
        object_path(ObjectRef("v1", "Pod", "x", "y"))
    with pytest.raises(TargetError):
        object_path(ObjectRef("apps/v1", "Deployment", None, "no-namespace"))


def test_list_delete_and_readiness(api_server: FakeApiServer) -> None:
    target = _target(api_server)
    objects = [with_applied_hash(o) for o in render_desired_state(desired_state())]
    target.apply(objects)
    managed = target.list_managed()
    assert {m.ref for m in managed} == {ObjectRef.of(o) for o in objects}
    assert all(m.applied_hash for m in managed)
    lists = [r for r in api_server.requests if r["method"] == "GET"]
    assert all(
        r["query"] == {"labelSelector": ["app.kubernetes.io/managed-by=lakeplane-agent"]}
        for r in lists
    )

    worker = next(
        o for o in objects if o["kind"] == "Deployment" and "worker" in o["metadata"]["name"]
    )
    ref = ObjectRef.of(worker)
    # The fake server has no controller: no status yet, so not ready.
    assert target.readiness(ref).ready is False
    path = object_path(ref)
    api_server.objects[path]["status"] = {
        "observedGeneration": 1,
        "readyReplicas": 3,
        "updatedReplicas": 3,
    }
    readiness = target.readiness(ref)
    assert (readiness.ready, readiness.ready_replicas, readiness.desired_replicas) == (True, 3, 3)

    target.delete(ref)
    target.delete(ref)  # already gone: 404 is success
    deletes = [r for r in api_server.requests if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [path, path]
    assert target.readiness(ref).exists is False


def test_a_refused_apply_is_a_target_error(api_server: FakeApiServer) -> None:
    api_server.refuse_with = 403
    with pytest.raises(TargetError, match="403"):
        _target(api_server).apply(render_desired_state(desired_state())[:1])


def test_an_unreachable_api_server_is_a_target_error() -> None:
    configuration = client.Configuration(host="http://127.0.0.1:9")
    configuration.retries = 0
    target = KubernetesTarget(client.ApiClient(configuration), request_timeout=2)
    with pytest.raises(TargetError):
        target.list_managed()
