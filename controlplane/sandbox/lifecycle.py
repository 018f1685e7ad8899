"""Emulator aids that give moto the lifecycles real AWS has (docs/sandbox.md). Not product code.

* **EKS status** — moto marks a cluster ACTIVE the moment CreateCluster returns. Real clusters sit
  in CREATING for ~10 minutes and may end FAILED. With the "hold" rule on, every new cluster
  starts in CREATING and stays there until a test flips it (``set_cluster_status``), so the
  "wait without holding a worker" path and the FAILED path can be exercised.
* **AWS-managed policies** — moto only knows AWS's managed policies when told to load all ~1,600
  of them per account (~0.1 s and megabytes per fresh account). Real accounts always have them;
  the layer seeds just the ones EKS needs, lazily, into each account's IAM backend.

Both reach into moto's in-process backends, which is why the layer and moto share a process.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.eks.models import eks_backends
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends

from controlplane.providers.aws.policies import EKS_MANAGED_POLICY_ARNS

EKS_STATUSES = ("CREATING", "ACTIVE", "DELETING", "FAILED", "UPDATING", "PENDING")


class ControlError(ValueError):
    pass


def set_cluster_status(
    account: str,
    region: str,
    cluster: str,
    status: str,
    issues: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Set an existing cluster's status (and, for FAILED, the health issues it reports)."""
    if status not in EKS_STATUSES:
        raise ControlError(f"status must be one of {', '.join(EKS_STATUSES)}")
    backend = eks_backends[account][region]
    found = backend.clusters.get(cluster)
    if found is None:
        raise ControlError(f"no cluster {cluster!r} in account {account} region {region}")
    found.status = status
    # moto's Cluster has no health attribute; its serializer reads one when present, so a
    # FAILED cluster describes its issues the way EKS does (cluster.health.issues).
    vars(found)["health"] = {"issues": issues or []}
    return {"cluster": cluster, "status": status}


class EksHold:
    """The "new clusters start in CREATING" rule, on or off (off after a layer reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False

    def set(self, enabled: bool) -> None:
        with self._lock:
            self.enabled = enabled

    def after_create(self, account: str, region: str, payload: bytes) -> bytes:
        """Put the just-created cluster in CREATING and answer as EKS would have."""
        with self._lock:
            if not self.enabled:
                return payload
        try:
            document = json.loads(payload)
            name = document["cluster"]["name"]
        except (ValueError, KeyError, TypeError):
            return payload
        set_cluster_status(account, region, name, "CREATING")
        document["cluster"]["status"] = "CREATING"
        return json.dumps(document).encode()


def seed_eks_managed_policies(account: str) -> None:
    """Give the account's IAM the AWS-managed policies an EKS cluster and its nodes attach."""
    backend = iam_backends[account]["global"]
    if all(arn in backend.managed_policies for arn in EKS_MANAGED_POLICY_ARNS):
        return
    data = _managed_policy_data()
    for arn in EKS_MANAGED_POLICY_ARNS:
        if arn not in backend.managed_policies:
            name = arn.rsplit("/", 1)[-1]
            policy = AWSManagedPolicy.from_data(name, account, "us-east-1", data[name])
            backend.managed_policies[policy.arn] = policy


_DATA: dict[str, Any] = {}


def _managed_policy_data() -> dict[str, Any]:
    if not _DATA:
        _DATA.update(json.loads(aws_managed_policies_data))
    return _DATA
