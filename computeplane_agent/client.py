"""The agent's side of the agent API (API.md "Agent API"): an interface and an HTTP client."""

from __future__ import annotations

from typing import Protocol

import requests
from pydantic import BaseModel, ValidationError

from computeplane_agent.contract import (
    AgentCredential,
    DesiredState,
    Heartbeat,
    QueryReport,
    Registration,
    ScalingAnswer,
    ScalingReport,
    StatusReport,
    UsageReport,
    WakeRequest,
)

API_PREFIX = "/api/agent/v1"


class ControlPlaneUnavailable(Exception):
    """The control plane could not be reached or answered 5xx/429: try again later."""


class ControlPlaneRefused(Exception):
    """The control plane refused the agent (401/403/4xx): retrying the same request won't help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class MalformedDesiredState(Exception):
    """A desired state that does not parse under this agent's contract."""

    def __init__(self, version: int | None, message: str) -> None:
        super().__init__(message)
        self.version = version


class ControlPlaneClient(Protocol):
    def register(self, registration: Registration) -> AgentCredential: ...

    def desired_state(self, known_version: int | None, wait_seconds: int) -> DesiredState | None:
        """The desired state if its version differs from ``known_version``, None (304) if not."""

    def status(self, report: StatusReport) -> None: ...

    def heartbeat(self, heartbeat: Heartbeat) -> None: ...

    def usage(self, report: UsageReport) -> None: ...

    def scaling(self, report: ScalingReport) -> ScalingAnswer:
        """Report an autoscaling decision; the answer says which worker count stands."""


def parse_etag(raw: str | None) -> int | None:
    """``"7"``, ``W/"7"`` or ``7`` → 7."""
    if not raw:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    return int(value) if value.isdigit() else None


class HttpControlPlaneClient:
    def __init__(
        self,
        base_url: str,
        *,
        credential: str | None = None,
        timeout_seconds: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.timeout_seconds = timeout_seconds
        self.session = session or requests.Session()
        # True while a desired-state long poll is in flight (the agent's stop uses it).
        self.long_polling = False

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        extra_timeout: float = 0,
    ) -> requests.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self.credential:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{API_PREFIX}/{path}",
                data=body.model_dump_json() if body is not None else None,
                headers={**all_headers, "Content-Type": "application/json"}
                if body is not None
                else all_headers,
                params=params,
                timeout=self.timeout_seconds + extra_timeout,
            )
        except requests.RequestException as exc:
            raise ControlPlaneUnavailable(str(exc)) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ControlPlaneUnavailable(f"{method} {path} answered {response.status_code}")
        if response.status_code >= 400:
            raise ControlPlaneRefused(response.status_code, response.text[:500])
        return response

    def register(self, registration: Registration) -> AgentCredential:
        response = self._request("POST", "register", body=registration)
        return AgentCredential.model_validate_json(response.content)

    def desired_state(self, known_version: int | None, wait_seconds: int) -> DesiredState | None:
        headers = {} if known_version is None else {"If-None-Match": f'"{known_version}"'}
        self.long_polling = True  # nothing is half done while waiting: a stop may cut it short
        try:
            response = self._request(
                "GET",
                "desired-state",
                headers=headers,
                params={"wait": str(wait_seconds)},
                # The server holds the request up to ``wait`` seconds before answering 304.
                extra_timeout=wait_seconds,
            )
        finally:
            self.long_polling = False
        if response.status_code == 304:
            return None
        try:
            return DesiredState.model_validate_json(response.content)
        except ValidationError as exc:
            version = parse_etag(response.headers.get("ETag"))
            raise MalformedDesiredState(version, _summarise(exc)) from exc

    def status(self, report: StatusReport) -> None:
        self._request("POST", "status", body=report)

    def heartbeat(self, heartbeat: Heartbeat) -> None:
        self._request("POST", "heartbeat", body=heartbeat)

    def usage(self, report: UsageReport) -> None:
        self._request("POST", "usage", body=report)

    def scaling(self, report: ScalingReport) -> ScalingAnswer:
        response = self._request("POST", "scaling", body=report)
        return ScalingAnswer.model_validate_json(response.content)

    def queries(self, report: QueryReport) -> None:
        """The gateway's query records (``computeplane_agent.listener`` batches them)."""
        self._request("POST", "queries", body=report)

    def wake(self, request: WakeRequest) -> None:
        """Start a stopped or suspended cluster a query is waiting for."""
        self._request("POST", "wake", body=request)


def _summarise(exc: ValidationError) -> str:
    # Field locations and error types only: the offending input is not echoed back.
    parts = [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['type']}" for error in exc.errors()[:10]
    ]
    return "desired state does not match contract: " + "; ".join(parts)
