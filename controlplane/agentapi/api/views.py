"""The agent API: thin views over services; bodies are ``computeplane_agent.contract`` models."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from computeplane_agent import contract
from controlplane.agentapi import ingest, services
from controlplane.agentapi.api.authentication import (
    REALM,
    AgentCredentialAuthentication,
    IsAgent,
)
from controlplane.agentapi.longpoll import VersionWaiter, release_database_connection
from controlplane.agentapi.models import AgentCredential
from controlplane.core import ratelimit
from controlplane.core.api import lean
from controlplane.core.audit import client_ip

Document = TypeVar("Document", bound=pydantic.BaseModel)

DEFAULT_WAIT_SECONDS = 20


def parse(model: type[Document], request: Request) -> Document:
    """The request body as a contract model; a schema violation is a 400 with field errors."""
    try:
        return model.model_validate_json(request.body or b"{}")
    except pydantic.ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors(include_url=False, include_input=False):
            field = ".".join(str(part) for part in error["loc"]) or "non_field_errors"
            errors.setdefault(field, []).append(error["msg"])
        raise exceptions.ValidationError(errors) from exc


def _agent_errors(view: APIView, exc: Exception) -> Exception:
    # Services raise AgentAuthError; DRF's AuthenticationFailed adds WWW-Authenticate.
    if isinstance(exc, services.AgentAuthError):
        return exceptions.AuthenticationFailed(exc.detail)
    return exc


class AgentView(APIView):
    # Not in the public OpenAPI schema: the bodies are computeplane_agent.contract models,
    # whose JSON schemas are the reference (docs/agent.md).
    schema = None
    authentication_classes = [AgentCredentialAuthentication]
    permission_classes = [IsAgent]

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(_agent_errors(self, exc))

    def get_authenticate_header(self, request: Request) -> str:
        return REALM

    def credential(self, request: Request) -> AgentCredential:
        assert isinstance(request.auth, AgentCredential)
        return request.auth


class RegisterView(AgentView):
    """Exchange a one-time bootstrap token for this agent's credential (shown once)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        # Unauthenticated by nature: every attempt counts, by client address.
        ratelimit.check(ratelimit.AGENT_REGISTER, f"ip:{client_ip(request)}")
        registration = parse(contract.Registration, request)
        issued = services.register_agent(registration, source_ip=client_ip(request))
        return Response(issued.as_contract().model_dump(mode="json"), status=201)


def _wait_seconds(request: Request) -> int:
    raw = request.query_params.get("wait", str(DEFAULT_WAIT_SECONDS))
    try:
        wait = int(raw)
    except ValueError:
        raise exceptions.ValidationError({"wait": ["A whole number of seconds."]}) from None
    if wait < 0:
        raise exceptions.ValidationError({"wait": ["Must be 0 or more."]})
    return min(wait, int(settings.LAKEPLANE_AGENT_MAX_WAIT_SECONDS))


def _known_version(request: Request) -> int | None:
    """The version in ``If-None-Match`` (``"7"``, ``W/"7"`` or ``7``); None if absent/foreign."""
    raw = request.headers.get("If-None-Match", "").strip()
    raw = raw.removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() else None


def etag(version: int) -> str:
    return f'"{version}"'


class DesiredStateView(AgentView):
    """Long poll: 200 at once when the version differs from ``If-None-Match``, else wait up to
    ``?wait=`` seconds (capped) and answer 304 if nothing changed. No database connection is
    held while waiting (see longpoll.py)."""

    def get(self, request: Request) -> Response:
        credential = self.credential(request)
        if agent_id := request.query_params.get("agent_id"):
            services.check_agent_id(credential, agent_id)
        wait = _wait_seconds(request)
        known = _known_version(request)
        plane = credential.compute_plane
        version = services.desired_state_version(plane.id)
        if version != known:
            return self._current(plane)
        if wait:
            with VersionWaiter(plane.id, lambda: services.desired_state_version(plane.id)) as w:
                # Re-read after subscribing: a publish since the first read is not missed.
                changed = services.desired_state_version(plane.id) != known
                if changed or w.wait(known, wait):
                    return self._current(plane)
        release_database_connection()
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(known)})

    def _current(self, plane: Any) -> Response:
        document = services.current_desired_state(plane)
        return Response(document.model_dump(mode="json"), headers={"ETag": etag(document.version)})


class HeartbeatView(AgentView):
    """Marks the agent connected; the answer carries a new credential when rotation is due."""

    def post(self, request: Request) -> Response:
        return Response(self.answer(self.credential(request), parse(contract.Heartbeat, request)))

    @staticmethod
    def answer(credential: AgentCredential, heartbeat: contract.Heartbeat) -> dict[str, Any]:
        services.record_heartbeat(credential, heartbeat)
        return HeartbeatView.rotation_answer(credential, heartbeat)

    @staticmethod
    def body(heartbeat: contract.Heartbeat) -> dict[str, Any]:
        return {
            "agent_id": heartbeat.agent_id,
            "heartbeat_seconds": settings.LAKEPLANE_AGENT_HEARTBEAT_SECONDS,
            "credential": None,
        }

    @staticmethod
    def rotation_answer(
        credential: AgentCredential, heartbeat: contract.Heartbeat
    ) -> dict[str, Any]:
        """The answer to a recorded heartbeat, with a new credential when rotation is due."""
        body = HeartbeatView.body(heartbeat)
        rotated = services.rotate_if_due(credential)
        if rotated is not None:
            body["credential"] = rotated.as_contract().model_dump(mode="json")
        return body


def _replay_headers(outcome: services.ReportOutcome) -> dict[str, str]:
    return {"Lakeplane-Replayed": "true"} if outcome.replayed else {}


def _report_response(outcome: services.ReportOutcome) -> Response:
    return Response(outcome.result, headers=_replay_headers(outcome))


class StatusView(AgentView):
    def post(self, request: Request) -> Response:
        report = parse(contract.StatusReport, request)
        return _report_response(services.record_status(self.credential(request), report))


class ScalingView(AgentView):
    """An autoscaling decision; the answer is the worker count that stands."""

    def post(self, request: Request) -> Response:
        report = parse(contract.ScalingReport, request)
        answer = services.record_scaling(self.credential(request), report)
        return Response(answer.model_dump(mode="json"))


class UsageView(AgentView):
    def post(self, request: Request) -> Response:
        report = parse(contract.UsageReport, request)
        return _report_response(services.record_usage(self.credential(request), report))


class QueriesView(AgentView):
    def post(self, request: Request) -> Response:
        report = parse(contract.QueryReport, request)
        return Response(services.record_queries(self.credential(request), report))


class WakeView(AgentView):
    def post(self, request: Request) -> Response:
        wake = parse(contract.WakeRequest, request)
        answer = services.request_wake(self.credential(request), wake)
        started = answer.get("started", False)
        return Response(answer, status=status.HTTP_202_ACCEPTED if started else status.HTTP_200_OK)


# --- lean entry points for the two high-volume reports --------------------------------------
# Every agent sends a heartbeat every few seconds and a status report on every change, so
# these two endpoints carry nearly all agent traffic (bench/agent_ingest.py). The usual request
# (a valid credential, a valid body, JSON accepted) is served here without DRF's request
# wrapping, content negotiation, permission and response finalising. Everything else — a bad
# or missing credential, an invalid body, a foreign agent id, another method, an Accept header
# or ?format= asking for something else — goes to the DRF view unchanged, which runs the same
# checks again (they have no side effects besides the idempotent first_used_at stamp) and
# answers exactly as before. The success answer is rendered by DRF's JSONRenderer with the
# headers DRF would add, so the bytes on the wire are the same (tests/agentapi/test_lean.py).
_ALLOW = "POST, OPTIONS"
_renderer = JSONRenderer()


def _fast_path_applies(request: HttpRequest) -> bool:
    return request.method == "POST" and lean.accepts_json(request) and "format" not in request.GET


def _json_response(
    body: dict[str, Any], headers: dict[str, str] | None = None, status: int = 200
) -> HttpResponse:
    response = lean.response_as_drf(
        _renderer.render(body), view=AgentView, allow=_ALLOW, status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _lean_input(request: HttpRequest, model: type[Document]) -> tuple[str, Document] | None:
    """The bearer secret and the parsed body of a usual request; None sends it to DRF."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        return secret.strip(), model.model_validate_json(request.body or b"{}")
    except pydantic.ValidationError:
        return None


def _authenticated(secret: str, document: Document) -> AgentCredential | None:
    """The credential when it is valid and speaks for the document's agent; None sends the
    request to DRF, which answers with the precise error."""
    try:
        credential = services.authenticate_credential(secret)
        services.check_agent_id(credential, document.agent_id)  # type: ignore[attr-defined]
    except (services.AgentAuthError, services.ForeignComputePlane):
        return None
    return credential


_heartbeat_view = HeartbeatView.as_view()
_status_view = StatusView.as_view()


@csrf_exempt
def heartbeat(request: HttpRequest) -> HttpResponse:
    lean = _lean_input(request, contract.Heartbeat) if _fast_path_applies(request) else None
    if lean is None:
        return _heartbeat_view(request)
    secret, beat = lean
    # PostgreSQL: buffered and written in batches (ingest.py) when the credential is known.
    if ingest.enabled() and ingest.accept_heartbeat(secret, beat):
        return _json_response(HeartbeatView.body(beat))
    # Authenticated and recorded in one statement (None: nothing was written).
    recorded = services.fast_heartbeat(secret, beat)
    if recorded is not None and not recorded.rotation_due:
        return _json_response(HeartbeatView.body(beat))
    credential = _authenticated(secret, beat)
    if credential is None:
        return _heartbeat_view(request)  # e.g. revoked in between: recording is idempotent
    if recorded is None:
        return _json_response(HeartbeatView.answer(credential, beat))
    # Rare (the last third of a credential's life): the answer carries the rotation.
    return _json_response(HeartbeatView.rotation_answer(credential, beat))


@csrf_exempt
def status_report(request: HttpRequest) -> HttpResponse:
    lean = _lean_input(request, contract.StatusReport) if _fast_path_applies(request) else None
    if lean is None:
        return _status_view(request)
    secret, report = lean
    if ingest.enabled() and (accepted := ingest.accept_status(secret, report)) is not None:
        # Applied at most once by the next flush (ingest.py).
        return _json_response(accepted, status=status.HTTP_202_ACCEPTED)
    outcome = services.fast_status(secret, report)
    if outcome is None:
        credential = _authenticated(secret, report)
        if credential is None:
            return _status_view(request)
        outcome = services.record_status(credential, report)
    return _json_response(outcome.result, _replay_headers(outcome))
