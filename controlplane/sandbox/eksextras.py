"""EKS add-ons and Pod Identity associations, which moto 5.2.5 does not implement (docs/sandbox.md).

A minimal in-memory emulation of the eight operations the platform's ``pod_identity`` step calls —
CreateAddon, DescribeAddon, DeleteAddon, ListAddons and Create/List/Describe/Delete
PodIdentityAssociation — on the EKS REST paths botocore's own service model names (the layer
routes requests with it, ``operations.rest_operation``). Only the fields Lakeplane uses are
kept. State is per account, region and cluster, and belongs to the moto cluster object it was
created on: once moto's cluster is deleted (or replaced by a new one of that name), its add-ons
and associations are gone, as EKS deletes them with the cluster.

Behaviour as EKS: a missing cluster or object is ``ResourceNotFoundException`` (404); a second
add-on of one name or association of one service account is ``ResourceInUseException`` (409)
unless the same ``clientRequestToken`` is sent again, which returns the first result; an
association's role must exist in the account (``InvalidParameterException`` otherwise). Add-ons
are ``ACTIVE`` at once and deletes take effect at once (EKS answers ``DELETING`` and finishes
later; the reconcilers look again either way).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.eks.models import eks_backends
from moto.iam.models import iam_backends

OPERATIONS = frozenset(
    {
        "CreateAddon",
        "DescribeAddon",
        "DeleteAddon",
        "ListAddons",
        "CreatePodIdentityAssociation",
        "ListPodIdentityAssociations",
        "DescribePodIdentityAssociation",
        "DeletePodIdentityAssociation",
    }
)
# The default add-on version EKS picks for a current Kubernetes version; nothing reads it.
_ADDON_VERSION = "v1.3.4-eksbuild.1"

Response = tuple[int, list[tuple[str, str]], bytes]


class EksApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _ClusterExtras:
    cluster: Any  # moto's Cluster object: state is dropped when it is no longer moto's
    addons: dict[str, dict[str, Any]] = field(default_factory=dict)
    associations: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token → (kind, key)


@dataclass(frozen=True)
class _Call:
    """One request: its cluster's state, where it was sent, and what it says."""

    extras: _ClusterExtras
    account: str
    region: str
    cluster: str
    item: str  # the add-on name or association id in the path, if any
    params: dict[str, str]
    payload: dict[str, Any]


def _json(status: int, document: dict[str, Any]) -> Response:
    body = json.dumps(document).encode()
    return (
        status,
        [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))],
        body,
    )


def _error(error: EksApiError) -> Response:
    body = json.dumps({"__type": error.code, "message": error.message}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", error.code),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return error.status, headers, body


def _not_found(message: str) -> EksApiError:
    return EksApiError(404, "ResourceNotFoundException", message)


class EksExtras:
    """The emulated state and one handler per operation; thread-safe (one server, many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str, str], _ClusterExtras] = {}

    def state(self) -> dict[tuple[str, str, str], _ClusterExtras]:
        """A copy to snapshot with moto's backends (each entry points at moto's cluster)."""
        with self._lock:
            return dict(self._state)

    def load(self, state: dict[tuple[str, str, str], _ClusterExtras]) -> None:
        with self._lock:
            self._state = dict(state)

    def handle(
        self,
        action: str,
        account: str,
        region: str,
        path: str,
        query: str,
        body: bytes,
    ) -> Response:
        parts = [unquote(p) for p in path.strip("/").split("/")]  # clusters/{name}/{kind}[/{id}]
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            payload = json.loads(body) if body else {}
            with self._lock:
                call = _Call(
                    extras=self._cluster(account, region, parts[1]),
                    account=account,
                    region=region,
                    cluster=parts[1],
                    item=parts[3] if len(parts) > 3 else "",
                    params=params,
                    payload=payload,
                )
                handler: Callable[[_Call], Response] = getattr(self, f"_{action}")
                return handler(call)
        except EksApiError as error:
            return _error(error)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            return _error(EksApiError(400, "InvalidParameterException", f"bad request: {exc}"))

    def _cluster(self, account: str, region: str, name: str) -> _ClusterExtras:
        cluster = eks_backends[account][region].clusters.get(name)
        key = (account, region, name)
        if cluster is None:
            self._state.pop(key, None)
            raise _not_found(f"No cluster found for name: {name}.")
        extras = self._state.get(key)
        if extras is None or extras.cluster is not cluster:
            extras = self._state[key] = _ClusterExtras(cluster)
        return extras

    @staticmethod
    def _replayed(call: _Call, kind: str) -> str | None:
        """The key of what an earlier create with this client token made, if any."""
        token = call.payload.get("clientRequestToken")
        if token and token in call.extras.tokens and call.extras.tokens[token][0] == kind:
            return call.extras.tokens[token][1]
        return None

    # --- add-ons ------------------------------------------------------------------------------
    def _CreateAddon(self, call: _Call) -> Response:
        name = str(call.payload["addonName"])
        replayed = self._replayed(call, "addon")
        if replayed is not None and replayed in call.extras.addons:
            return _json(200, {"addon": call.extras.addons[replayed]})
        if name in call.extras.addons:
            raise EksApiError(409, "ResourceInUseException", f"Addon {name} already exists.")
        now = time.time()
        addon: dict[str, Any] = {
            "addonName": name,
            "clusterName": call.cluster,
            "status": "ACTIVE",
            "addonVersion": call.payload.get("addonVersion") or _ADDON_VERSION,
            "health": {"issues": []},
            "addonArn": (
                f"arn:aws:eks:{call.region}:{call.account}:addon/{call.cluster}/{name}/"
                f"{uuid.uuid4()}"
            ),
            "createdAt": now,
            "modifiedAt": now,
            "tags": dict(call.payload.get("tags") or {}),
        }
        call.extras.addons[name] = addon
        if call.payload.get("clientRequestToken"):
            call.extras.tokens[str(call.payload["clientRequestToken"])] = ("addon", name)
        return _json(200, {"addon": addon})

    def _DescribeAddon(self, call: _Call) -> Response:
        addon = call.extras.addons.get(call.item)
        if addon is None:
            raise _not_found(f"No addon: {call.item} found in cluster: {call.cluster}")
        return _json(200, {"addon": addon})

    def _DeleteAddon(self, call: _Call) -> Response:
        addon = call.extras.addons.pop(call.item, None)
        if addon is None:
            raise _not_found(f"No addon: {call.item} found in cluster: {call.cluster}")
        return _json(200, {"addon": {**addon, "status": "DELETING"}})

    def _ListAddons(self, call: _Call) -> Response:
        return _json(200, {"addons": sorted(call.extras.addons)})

    # --- Pod Identity associations ------------------------------------------------------------
    def _CreatePodIdentityAssociation(self, call: _Call) -> Response:
        namespace, account_name = (
            str(call.payload["namespace"]),
            str(call.payload["serviceAccount"]),
        )
        role_arn = str(call.payload["roleArn"])
        replayed = self._replayed(call, "association")
        if replayed is not None and replayed in call.extras.associations:
            return _json(200, {"association": call.extras.associations[replayed]})
        if any(
            (a["namespace"], a["serviceAccount"]) == (namespace, account_name)
            for a in call.extras.associations.values()
        ):
            raise EksApiError(409, "ResourceInUseException", "Association already exists.")
        roles = iam_backends[call.account]["global"].roles.values()
        if not any(role.arn == role_arn for role in roles):
            raise EksApiError(
                400,
                "InvalidParameterException",
                f"Role {role_arn} does not exist in {call.account}.",
            )
        association_id = "a-" + "".join(
            secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(17)
        )
        now = time.time()
        association = {
            "clusterName": call.cluster,
            "namespace": namespace,
            "serviceAccount": account_name,
            "roleArn": role_arn,
            "associationArn": (
                f"arn:aws:eks:{call.region}:{call.account}:podidentityassociation/{call.cluster}/{association_id}"
            ),
            "associationId": association_id,
            "tags": dict(call.payload.get("tags") or {}),
            "createdAt": now,
            "modifiedAt": now,
        }
        call.extras.associations[association_id] = association
        if call.payload.get("clientRequestToken"):
            call.extras.tokens[str(call.payload["clientRequestToken"])] = (
                "association",
                association_id,
            )
        return _json(200, {"association": association})

    def _ListPodIdentityAssociations(self, call: _Call) -> Response:
        summary_keys = (
            "clusterName",
            "namespace",
            "serviceAccount",
            "associationArn",
            "associationId",
        )
        found = [
            {k: a[k] for k in summary_keys}
            for a in call.extras.associations.values()
            if call.params.get("namespace") in (None, a["namespace"])
            and call.params.get("serviceAccount") in (None, a["serviceAccount"])
        ]
        return _json(200, {"associations": found})

    def _DescribePodIdentityAssociation(self, call: _Call) -> Response:
        association = call.extras.associations.get(call.item)
        if association is None:
            raise _not_found(f"No association found for id: {call.item}.")
        return _json(200, {"association": association})

    def _DeletePodIdentityAssociation(self, call: _Call) -> Response:
        association = call.extras.associations.pop(call.item, None)
        if association is None:
            raise _not_found(f"No association found for id: {call.item}.")
        return _json(200, {"association": association})
