"""HTTP client for the sandbox layer's control API (faults, call log, clock, EKS status)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Call:
    seq: int
    account: str
    target_account: str | None
    service: str
    action: str
    mutating: bool
    outcome: str
    status: int


class SandboxControl:
    def __init__(self, endpoint_url: str, timeout: float = 10.0) -> None:
        self.base = endpoint_url.rstrip("/") + "/_lakeplane"
        self.timeout = timeout
        self._http = requests.Session()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, self.base + path, timeout=self.timeout, **kwargs)
        response.raise_for_status()
        return response.json()

    def add_fault(self, kind: str, **rule: Any) -> dict[str, Any]:
        """e.g. ``add_fault("throttle", service=["sts", "iam"], fraction=0.3)``.

        ``add_fault("delay", action="CreateVpc", count=1, seconds=30)`` holds the matching call
        (its rule's ``fired`` turns 1 once it is held) until ``seconds`` pass or
        :meth:`clear_faults` releases it; then the call is applied as usual.
        """
        result: dict[str, Any] = self._send("POST", "/faults", json={"kind": kind, **rule})
        return result

    def faults(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/faults")["faults"])

    def clear_faults(self) -> None:
        """Remove every rule; calls a ``delay`` still holds go on at once."""
        self._send("DELETE", "/faults")

    def calls(self, account: str | None = None, since: int = 0) -> list[Call]:
        params: dict[str, Any] = {"since": since}
        if account:
            params["account"] = account
        return [Call(**c) for c in self._send("GET", "/calls", params=params)["calls"]]

    def clear_calls(self) -> None:
        self._send("DELETE", "/calls")

    def advance_clock(self, seconds: float) -> None:
        self._send("POST", "/clock", json={"advance_seconds": seconds})

    def hold_new_eks_clusters(self, enabled: bool = True) -> None:
        """New EKS clusters start in CREATING (moto makes them ACTIVE) until flipped."""
        self._send("POST", "/eks/hold", json={"enabled": enabled})

    def set_eks_cluster_status(
        self,
        account: str,
        cluster: str,
        status: str,
        *,
        region: str = "us-east-1",
        issues: list[dict[str, Any]] | None = None,
    ) -> None:
        """Flip a cluster to e.g. ACTIVE or FAILED (``issues`` become ``cluster.health``)."""
        body = {"account": account, "region": region, "cluster": cluster, "status": status}
        self._send("POST", "/eks/status", json={**body, "issues": issues or []})

    def register_marketplace_customer(
        self, token: str, customer: str, product: str, account: str = ""
    ) -> None:
        """A marketplace sign-up: ResolveCustomer(token) answers it; the customer is subscribed."""
        self._send(
            "POST",
            "/marketplace/customers",
            json={"token": token, "customer": customer, "product": product, "account": account},
        )

    def marketplace_unprocessed(self, count: int) -> None:
        """The next ``count`` metering records come back unprocessed."""
        self._send("POST", "/marketplace/unprocessed", json={"count": count})

    def marketplace_records(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/marketplace/records")["records"])

    def reset(self) -> None:
        """Faults, call log and clock back to defaults (moto's resources are kept)."""
        self._send("POST", "/reset")

    def healthy(self) -> bool:
        try:
            return bool(self._send("GET", "/health")["ok"])
        except requests.RequestException:
            return False
