"""A thin WSGI layer in front of moto: fault injection, trust enforcement, a call log.

These are emulator aids for tests and benchmarks, not product code (docs/sandbox.md):

* **Faults** — ``POST /_lakeplane/faults`` with ``{service, action, kind, count | fraction}``
  makes matching calls fail the way AWS fails: ``throttle``, ``access_denied``, ``server_error``,
  or ``drop_response`` (the call IS applied, then the connection is reset, so the client retries
  an operation that already happened — the case idempotent reconcilers must survive). ``delay``
  holds the call for ``seconds`` (or until the fault is cleared) and then applies it: a call
  "in flight" long enough for a test to kill the worker that sent it.
* **Trust** — ``sts:AssumeRole`` is refused unless the role's trust policy allows the caller with
  the request's external ID (moto itself accepts any AssumeRole). Requests signed with the
  Pod Identity key (``customers.POD_IDENTITY_ACCESS_KEY_ID``) act as ``pods.eks.amazonaws.com``:
  they may assume roles that trust that service (agent roles) and do nothing else. Temporary
  credentials are refused once expired, against a clock tests can move with
  ``POST /_lakeplane/clock``.
* **EKS add-ons and Pod Identity associations** — moto has neither; ``eksextras`` answers them.
* **Call log** — every attempt that reached the emulator, per account, with service, action,
  whether it mutates, and its outcome: ``GET /_lakeplane/calls?account=…``.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import random
import re
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from
from werkzeug.wsgi import get_input_stream

from controlplane.sandbox import eksextras, lifecycle, marketplace, operations, persistence, trust
from controlplane.sandbox.customers import POD_IDENTITY_ACCESS_KEY_ID as POD_IDENTITY_KEY
from controlplane.sandbox.customers import POD_IDENTITY_SERVICE

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

FAULT_KINDS = ("throttle", "access_denied", "server_error", "drop_response", "delay")
# A held call never outlives this, so a forgotten delay cannot wedge a server thread for long.
MAX_DELAY_SECONDS = 120.0
DEFAULT_DELAY_SECONDS = 30.0
CONTROL_PREFIX = "/_lakeplane/"

_ACCESS_KEY_IN_RESPONSE = re.compile(r"<AccessKeyId>([^<]+)</AccessKeyId>")
_EXPIRATION_IN_RESPONSE = re.compile(r"<Expiration>([^<]+)</Expiration>")


@dataclass
class FaultRule:
    """One fault: which calls it matches and how often it fires.

    ``fraction`` fires deterministically by error diffusion (the n-th matching call fails when
    ``floor(n*f)`` steps up), so "30% of calls" is exactly 30% and never three in a row, which
    keeps tests repeatable. Pass ``seed`` for random firing instead.
    """

    kind: str
    services: tuple[str, ...] = ("*",)
    actions: tuple[str, ...] = ("*",)
    account: str | None = None
    count: int | None = None
    fraction: float | None = None
    seed: int | None = None
    seconds: float | None = None  # delay only: how long to hold a matching call
    id: str = field(default_factory=lambda: f"fault_{uuid.uuid4().hex[:12]}")
    matched: int = 0
    fired: int = 0
    _rng: random.Random | None = field(default=None, repr=False)
    # Set when the rule is cleared: held calls go on at once instead of sleeping out `seconds`.
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def matches(self, service: str, action: str, account: str) -> bool:
        return (
            ("*" in self.services or service in self.services)
            and ("*" in self.actions or action in self.actions)
            and (self.account is None or self.account == account)
        )

    def should_fire(self) -> bool:
        self.matched += 1
        if self.count is not None:
            fire = self.fired < self.count
        elif self.fraction is not None:
            if self.seed is not None:
                self._rng = self._rng or random.Random(self.seed)  # noqa: S311 - test aid
                fire = self._rng.random() < self.fraction
            else:
                fire = int(self.matched * self.fraction) > int((self.matched - 1) * self.fraction)
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire

    def public(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies every field, and the Event holds a lock.
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def hold(self) -> None:
        """delay: wait ``seconds``, or less if the rule is cleared meanwhile."""
        self._released.wait(self.seconds if self.seconds is not None else DEFAULT_DELAY_SECONDS)

    def release(self) -> None:
        self._released.set()


class BadControlRequest(ValueError):
    pass


def parse_fault(body: dict[str, Any]) -> FaultRule:
    kind = body.get("kind")
    if kind not in FAULT_KINDS:
        raise BadControlRequest(f"kind must be one of {', '.join(FAULT_KINDS)}")
    count, fraction = body.get("count"), body.get("fraction")
    if count is not None and fraction is not None:
        raise BadControlRequest("give count or fraction, not both")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise BadControlRequest("count must be a non-negative integer")
    if fraction is not None and not (isinstance(fraction, int | float) and 0 <= fraction <= 1):
        raise BadControlRequest("fraction must be a number between 0 and 1")
    seconds = body.get("seconds")
    if seconds is not None and kind != "delay":
        raise BadControlRequest("seconds applies to kind delay only")
    if seconds is not None and (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds <= MAX_DELAY_SECONDS
    ):
        raise BadControlRequest(f"seconds must be a number between 0 and {MAX_DELAY_SECONDS:g}")

    def names(value: Any) -> tuple[str, ...]:
        if value is None:
            return ("*",)
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadControlRequest("service and action must be strings or lists of strings")
        return tuple(values)

    return FaultRule(
        kind=kind,
        services=names(body.get("service")),
        actions=names(body.get("action")),
        account=body.get("account"),
        count=count,
        fraction=float(fraction) if fraction is not None else None,
        seed=body.get("seed"),
        seconds=float(seconds) if seconds is not None else None,
    )


@dataclass(frozen=True)
class CallRecord:
    seq: int
    account: str
    target_account: str | None
    service: str
    action: str
    mutating: bool
    outcome: str  # ok | error | throttle | access_denied | server_error | drop_response | ...
    status: int


# Signing names that are not botocore service names.
_SERVICE_OF_SIGNING_NAME = {"aws-marketplace": "meteringmarketplace"}


@functools.cache
def _protocol(service: str) -> str:
    service = _SERVICE_OF_SIGNING_NAME.get(service, service)
    try:
        return str(botocore.session.get_session().get_service_model(service).metadata["protocol"])
    except Exception:
        return "query"


# (status, code) per fault kind and wire protocol, as AWS itself answers.
_ERRORS: dict[str, dict[str, tuple[int, str]]] = {
    "throttle": {
        "query": (400, "Throttling"),
        "ec2": (503, "RequestLimitExceeded"),
        "json": (429, "ThrottlingException"),
        "rest-json": (429, "ThrottlingException"),
        "rest-xml": (503, "SlowDown"),
    },
    "access_denied": {
        "query": (403, "AccessDenied"),
        "ec2": (403, "UnauthorizedOperation"),
        "json": (403, "AccessDeniedException"),
        "rest-json": (403, "AccessDeniedException"),
        "rest-xml": (403, "AccessDenied"),
    },
    "server_error": {
        "query": (500, "InternalFailure"),
        "ec2": (500, "InternalError"),
        "json": (500, "InternalFailure"),
        "rest-json": (500, "InternalFailure"),
        "rest-xml": (500, "InternalError"),
    },
    "expired": {
        "query": (400, "ExpiredToken"),
        "ec2": (400, "RequestExpired"),
        "json": (400, "ExpiredTokenException"),
        "rest-json": (400, "ExpiredTokenException"),
        "rest-xml": (400, "ExpiredToken"),
    },
}


def aws_error(service: str, kind: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    protocol = _protocol(service)
    status, code = _ERRORS[kind].get(protocol, _ERRORS[kind]["query"])
    request_id = str(uuid.uuid4())
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = [("Content-Type", "application/xml")]
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers.append(("x-amzn-RequestId", request_id))
    return status, headers, body


def _with_length(headers: list[tuple[str, str]], payload: bytes) -> list[tuple[str, str]]:
    """Headers with Content-Length matching a rewritten body."""
    return [(k, str(len(payload)) if k.lower() == "content-length" else v) for k, v in headers]


def _reset_connection(environ: dict[str, Any]) -> None:
    """Close the client's connection with a TCP RST, as a lost response looks on the wire."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class SandboxLayer:
    """WSGI middleware wrapping moto's application. State is per process (one emulator)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._faults: list[FaultRule] = []
        self._calls: list[CallRecord] = []
        self._seq = itertools.count(1)
        self._clock_offset = timedelta(0)
        # Temporary credentials issued through this layer: access key id -> (account, expiry).
        self._issued: dict[str, tuple[str, datetime]] = {}
        self.eks_hold = lifecycle.EksHold()
        self.eks_extras = eksextras.EksExtras()
        self.marketplace = marketplace.Marketplace()
        # AWS calls share it; a snapshot of the state takes it alone (persistence.py).
        self.state_lock = persistence.SharedExclusiveLock()
        self._changes = 0  # grows with every call that may have changed the emulated cloud

    # --- persistence (docs/sandbox.md, "Restarts") ------------------------------------------
    def changes(self) -> int:
        with self._lock:
            return self._changes

    def _changed(self) -> None:
        with self._lock:
            self._changes += 1

    def save_state(self, path: Path) -> dict[str, Any]:
        """Snapshot moto's backends and what the layer emulates itself (add-ons, associations,
        the credentials it issued) in one file, so references between them survive."""
        with self.state_lock.exclusive():
            with self._lock:
                issued = dict(self._issued)
            return persistence.snapshot(
                path, {"issued": issued, "eks_extras": self.eks_extras.state()}
            )

    def restore_state(self, path: Path) -> bool:
        """Bring back a snapshot (True), find none (False), or raise ``RestoreRefused``."""
        with self.state_lock.exclusive():
            extras = persistence.restore(path)
            if extras is None:
                return False
            with self._lock:
                self._issued.update(extras["issued"])
            self.eks_extras.load(extras["eks_extras"])
            return True

    # --- control API ------------------------------------------------------------------------
    def _clear_faults(self) -> None:
        for rule in self._faults:
            rule.release()  # calls held by a delay go on now
        self._faults.clear()

    def reset(self) -> None:
        with self._lock:
            self._clear_faults()
            self._calls.clear()
            self._clock_offset = timedelta(0)
            self._issued.clear()
        self.eks_hold.set(False)
        self.marketplace.reset()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._clock_offset

    def _control(self, environ: dict[str, Any], body: bytes) -> tuple[int, Any]:
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"].removeprefix(CONTROL_PREFIX).strip("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "body must be a JSON object"}
        with self._lock:
            if path == "health":
                return 200, {"ok": True}
            if path == "faults" and method == "POST":
                try:
                    rule = parse_fault(payload)
                except BadControlRequest as exc:
                    return 400, {"error": str(exc)}
                self._faults.append(rule)
                return 201, rule.public()
            if path == "faults" and method == "GET":
                return 200, {"faults": [r.public() for r in self._faults]}
            if path == "faults" and method == "DELETE":
                self._clear_faults()
                return 200, {"faults": []}
            if path == "calls" and method == "GET":
                account = query.get("account")
                since = int(query.get("since", "0") or 0)
                calls = [
                    asdict(c)
                    for c in self._calls
                    if c.seq > since and account in (None, c.account, c.target_account)
                ]
                return 200, {"calls": calls}
            if path == "calls" and method == "DELETE":
                self._calls.clear()
                return 200, {"calls": []}
            if path == "clock" and method == "POST":
                seconds = payload.get("advance_seconds")
                if not isinstance(seconds, int | float):
                    return 400, {"error": "advance_seconds must be a number"}
                self._clock_offset += timedelta(seconds=seconds)
                return 200, {"now": self.now().isoformat()}
        if path == "reset" and method == "POST":
            self.reset()
            return 200, {"ok": True}
        if path.startswith("marketplace/"):
            try:
                if path == "marketplace/customers" and method == "POST":
                    return 201, self.marketplace.register(payload)
                if path == "marketplace/unprocessed" and method == "POST":
                    return 200, self.marketplace.set_unprocessed(payload.get("count"))
                if path == "marketplace/records" and method == "GET":
                    return 200, {"records": self.marketplace.records()}
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if path == "eks/hold" and method == "POST":
            if not isinstance(payload.get("enabled"), bool):
                return 400, {"error": "enabled must be true or false"}
            self.eks_hold.set(payload["enabled"])
            return 200, {"enabled": payload["enabled"]}
        if path == "eks/status" and method == "POST":
            fields = ("account", "region", "cluster", "status")
            if not all(isinstance(payload.get(k), str) for k in fields):
                return 400, {"error": f"give {', '.join(fields)} as strings"}
            issues = payload.get("issues", [])
            if not isinstance(issues, list):
                return 400, {"error": "issues must be a list"}
            self._changed()
            try:
                return 200, lifecycle.set_cluster_status(
                    payload["account"],
                    payload["region"],
                    payload["cluster"],
                    payload["status"],
                    issues,
                )
            except lifecycle.ControlError as exc:
                return 400, {"error": str(exc)}
        return 404, {"error": f"no control endpoint {method} {CONTROL_PREFIX}{path}"}

    # --- request path -----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            status, payload = self._control(environ, body)
            data = json.dumps(payload).encode()
            start_response(f"{status} X", [("Content-Type", "application/json")])
            return [data]

        signed = operations.parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        if signed is None:  # unsigned (moto-api, presigned URLs): not an AWS call we count
            if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
                self._changed()
            with self.state_lock.shared():
                return list(self.app(environ, start_response))
        form: dict[str, str] = {}
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action = operations.action_of(
            signed.service,
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", "/"),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_X_AMZ_TARGET"),
            form,
        )
        account = environ.get("HTTP_X_MOTO_ACCOUNT_ID") or self._account_of(signed.access_key_id)
        target_account = None
        if signed.service == "sts" and action == "AssumeRole":
            role_parts = form.get("RoleArn", "").split(":")
            target_account = role_parts[4] if len(role_parts) > 4 else None

        def record(outcome: str, status: int) -> None:
            with self._lock:
                if operations.is_mutating(action):
                    self._changes += 1
                self._calls.append(
                    CallRecord(
                        seq=next(self._seq),
                        account=account,
                        target_account=target_account,
                        service=signed.service,
                        action=action,
                        mutating=operations.is_mutating(action),
                        outcome=outcome,
                        status=status,
                    )
                )

        def refuse(kind: str, message: str) -> Iterable[bytes]:
            status, headers, payload = aws_error(signed.service, kind, message)
            record(kind, status)
            start_response(f"{status} X", headers)
            return [payload]

        with self._lock:
            fault = next(
                (
                    r
                    for r in self._faults
                    if r.matches(signed.service, action, account) and r.should_fire()
                ),
                None,
            )
        if fault is not None and fault.kind == "delay":
            fault.hold()  # outside the lock: other calls (and the control API) go on meanwhile
            fault = None  # then the call proceeds as if no fault matched
        if fault is not None and fault.kind != "drop_response":
            return refuse(fault.kind, self._fault_message(fault.kind, signed.service, action))

        expired = self._expired(signed.access_key_id)
        if expired:
            return refuse("expired", "The security token included in the request is expired")

        service_caller = POD_IDENTITY_SERVICE if signed.access_key_id == POD_IDENTITY_KEY else None
        if service_caller and not (signed.service == "sts" and action == "AssumeRole"):
            # Pod Identity only hands out the role's credentials; it never calls AWS itself.
            return refuse("access_denied", f"{service_caller} may only call sts:AssumeRole")
        if signed.service == "sts" and action == "AssumeRole":
            caller = trust.Caller(
                account_id=account, arn=f"arn:aws:iam::{account}:root", service=service_caller
            )
            decision = trust.check_assume_role(
                form.get("RoleArn", ""), caller, form.get("ExternalId")
            )
            if not decision.allowed:
                return refuse(
                    "access_denied",
                    f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on "
                    f"resource: {form.get('RoleArn', '')} ({decision.reason})",
                )

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        with self.state_lock.shared():  # a snapshot never sees a call half applied
            if signed.service == "iam":
                lifecycle.seed_eks_managed_policies(account)
            if signed.service == "eks" and action in eksextras.OPERATIONS:
                # Add-ons and Pod Identity associations: moto has none; the layer answers them.
                code, headers, payload = self.eks_extras.handle(
                    action,
                    account,
                    signed.region,
                    environ.get("PATH_INFO", "/"),
                    environ.get("QUERY_STRING", ""),
                    body,
                )
                captured["status"], captured["headers"] = f"{code} X", headers
            elif signed.service == "aws-marketplace" and action == "ResolveCustomer":
                code, headers, payload = self.marketplace.resolve_customer(body)  # moto has none
                captured["status"], captured["headers"] = f"{code} X", headers
            else:
                payload = b"".join(self.app(environ, capture))
            status_code = int(captured["status"].split()[0])
            if signed.service == "eks" and action == "CreateCluster" and status_code == 200:
                payload = self.eks_hold.after_create(account, signed.region, payload)
                captured["headers"] = _with_length(captured["headers"], payload)
            if signed.service == "sts" and action == "AssumeRole" and status_code == 200:
                payload = self._shift_expiration(payload)
                self._remember_credentials(payload, target_account or account)
                captured["headers"] = _with_length(captured["headers"], payload)
            if (
                signed.service == "aws-marketplace"
                and action == "BatchMeterUsage"
                and status_code == 200
            ):
                payload = self.marketplace.after_batch(body, payload)
                captured["headers"] = _with_length(captured["headers"], payload)
        if fault is not None:  # drop_response: the call happened, the answer is lost
            record("drop_response", status_code)
            _reset_connection(environ)
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b""]
        record("ok" if status_code < 400 else "error", status_code)
        start_response(captured["status"], captured["headers"])
        return [payload]

    @staticmethod
    def _fault_message(kind: str, service: str, action: str) -> str:
        if kind == "throttle":
            return "Rate exceeded"
        if kind == "access_denied":
            return f"not authorized to perform: {service}:{action} (injected by the sandbox)"
        return "We encountered an internal error. Please try again. (injected by the sandbox)"

    def _account_of(self, access_key_id: str) -> str:
        with self._lock:
            issued = self._issued.get(access_key_id)
        if issued is not None:
            return issued[0]
        try:
            return get_account_id_from(access_key_id)
        except Exception:
            return DEFAULT_ACCOUNT_ID

    def _shift_expiration(self, payload: bytes) -> bytes:
        """moto stamps expiry from the real clock; the sandbox's clock may have been moved."""
        with self._lock:
            offset = self._clock_offset
        if not offset:
            return payload

        def shift(match: re.Match[str]) -> str:
            when = datetime.fromisoformat(match[1].replace("Z", "+00:00")) + offset
            return f"<Expiration>{when.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"

        return _EXPIRATION_IN_RESPONSE.sub(shift, payload.decode("utf-8")).encode()

    def _remember_credentials(self, payload: bytes, account: str) -> None:
        text = payload.decode("utf-8", "replace")
        key, expiry = _ACCESS_KEY_IN_RESPONSE.search(text), _EXPIRATION_IN_RESPONSE.search(text)
        if key and expiry:
            when = datetime.fromisoformat(expiry[1].replace("Z", "+00:00"))
            with self._lock:
                self._issued[key[1]] = (account, when)

    def _expired(self, access_key_id: str) -> bool:
        with self._lock:
            issued = self._issued.get(access_key_id)
        return issued is not None and issued[1] <= self.now()
