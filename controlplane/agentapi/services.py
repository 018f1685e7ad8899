"""The agent API's write path: bootstrap tokens, credentials, desired state and reports.

Every function takes an explicit ``now`` (default: the clock) so expiry, rotation and
staleness can be tested by moving time rather than by sleeping. Documents are the models of
``computeplane_agent.contract``; nothing here defines a wire format.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Model, Q
from django.dispatch import Signal
from django.utils import timezone

from computeplane_agent import contract
from controlplane.agentapi import longpoll, scope, statements
from controlplane.agentapi.credcache import credentials
from controlplane.agentapi.models import (
    BOOTSTRAP_SCHEME,
    CREDENTIAL_SCHEME,
    AgentCredential,
    AgentPresence,
    AgentReport,
    DesiredState,
    ObservedState,
    ReportKind,
    UsageRecord,
    digest_of,
    rotation_due,
)
from controlplane.computeplanes.models import AgentStatus, ComputePlane, ComputePlaneStatus
from controlplane.core import audit
from controlplane.core.errors import LakeplaneError

# Sent after status reports are stored and applied (never for a replay or a report older than
# the stored one), with ``reports``: a sequence of (compute_plane_id, contract.StatusReport),
# each compute plane at most once (its newest applied report). One send may carry one report
# (a report answered on its own) or a whole batch, so listeners do their work per send, in a
# number of SQL statements that does not grow with the batch. The clusters, catalogs and
# caching apps listen, so this app never imports them.
status_reported = Signal()
# Sent once per applied usage report (never for a replay), inside its transaction, with
# ``compute_plane_id``, ``period_start`` and ``period_end``: billing keeps the periods agents
# vouched for, so that a period reported with no samples counts as "nothing ran".
usage_reported = Signal()
# Sent for an autoscaling decision of the agent, with ``compute_plane_id`` and ``report`` (a
# contract.ScalingReport); the clusters app answers with a contract.ScalingAnswer.
scaling_reported = Signal()
# The gateway's reports (``QueryReport``, ``WakeRequest``) are for the gateways app, which
# listens; this app authenticates them and passes them on with ``compute_plane_id`` and
# ``report``. The listener's answer is the response body (``send`` returns it).
queries_reported = Signal()
wake_requested = Signal()

AGENT_ACTOR = audit.Actor.system_actor("agent")
# Report records only have to outlive the agent's retries of one report (minutes); a day is
# a wide margin and keeps the table at a day's worth of reports.
REPORT_RETENTION = timedelta(days=1)


class AgentAuthError(LakeplaneError):
    """Unknown, expired, revoked or reused token or credential (401)."""

    status_code = 401
    code = "not-authenticated"
    title = "Authentication required"


class ForeignComputePlane(LakeplaneError):
    """A valid credential used for a compute plane it does not belong to (403)."""

    status_code = 403
    code = "permission-denied"
    title = "Permission denied"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def _body(prefixed_id: str) -> str:
    return prefixed_id.partition("_")[2]


def agent_id_for(compute_plane_id: str) -> str:
    """The agent's id: one agent per compute plane, stable across credential rotations."""
    return f"agt_{_body(compute_plane_id)}"


def _split_secret(secret: str, scheme: str) -> tuple[str, str] | None:
    """``<scheme>_<id body>_<random>`` → (id body, whole secret), or None if malformed."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != scheme or not parts[1] or not parts[2]:
        return None
    return parts[1], secret


# --- bootstrap tokens and registration ------------------------------------------------------
def issue_bootstrap_token(compute_plane: ComputePlane, *, now: datetime | None = None) -> str:
    """A new one-time bootstrap token for ``compute_plane``; returns the plaintext (once).

    Only the digest is stored; a new token replaces any unused one. The caller (the compute
    plane's bootstrap step) hands the plaintext to whatever installs the agent: the agent's
    credential Secret on EKS, the local agent process's environment in the sandbox.
    """
    token = f"{BOOTSTRAP_SCHEME}_{_body(compute_plane.id)}_{secrets.token_urlsafe(32)}"
    expires_at = _now(now) + timedelta(seconds=settings.LAKEPLANE_AGENT_BOOTSTRAP_TTL_SECONDS)
    ComputePlane.objects.filter(pk=compute_plane.pk).update(
        bootstrap_token_digest=digest_of(token), bootstrap_token_expires_at=expires_at
    )
    compute_plane.bootstrap_token_digest = digest_of(token)
    compute_plane.bootstrap_token_expires_at = expires_at
    return token


@dataclass(frozen=True)
class IssuedCredential:
    credential: AgentCredential
    secret: str

    def as_contract(self) -> contract.AgentCredential:
        return contract.AgentCredential(
            agent_id=agent_id_for(self.credential.compute_plane_id),
            credential=self.secret,
            expires_at=self.credential.expires_at,
            compute_plane_id=self.credential.compute_plane_id,
        )


def _issue_credential(compute_plane_id: str, now: datetime) -> IssuedCredential:
    credential = AgentCredential(
        compute_plane_id=compute_plane_id,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS),
    )
    secret = f"{CREDENTIAL_SCHEME}_{_body(credential.id)}_{secrets.token_urlsafe(32)}"
    credential.digest = digest_of(secret)
    credential.save(force_insert=True)
    return IssuedCredential(credential, secret)


def register_agent(
    registration: contract.Registration,
    *,
    now: datetime | None = None,
    source_ip: str | None = None,
) -> IssuedCredential:
    """Exchange a bootstrap token for a credential. The token works once, before it expires."""
    now = _now(now)
    parsed = _split_secret(registration.bootstrap_token, BOOTSTRAP_SCHEME)
    if parsed is None:
        raise AgentAuthError("Malformed bootstrap token.")
    with transaction.atomic():
        # Locked so two agents racing with one token cannot both win.
        plane = (
            ComputePlane.objects.select_for_update()
            .select_related("organization")
            .filter(pk=f"cp_{parsed[0]}", deleted_at__isnull=True)
            .first()
        )
        if plane is None or not plane.bootstrap_token_digest:
            raise AgentAuthError("Invalid or already used bootstrap token.")
        if not hmac.compare_digest(plane.bootstrap_token_digest, digest_of(parsed[1])):
            raise AgentAuthError("Invalid or already used bootstrap token.")
        if plane.bootstrap_token_expires_at is None or plane.bootstrap_token_expires_at <= now:
            raise AgentAuthError("This bootstrap token has expired.")
        if plane.status in (ComputePlaneStatus.DELETING, ComputePlaneStatus.DELETED):
            raise AgentAuthError("This compute plane is being deleted.")
        issued = _issue_credential(plane.id, now)
        # Single use: the digest goes; a re-install needs a new token.
        ComputePlane.objects.filter(pk=plane.pk).update(
            bootstrap_token_digest="",
            bootstrap_token_expires_at=None,
            agent_status=AgentStatus.CONNECTED,
            agent_version=registration.agent_version,
            agent_last_seen_at=now,
        )
        AgentPresence.objects.update_or_create(
            compute_plane_id=plane.id,
            defaults={
                "contract_version": registration.contract_version,
                "kubernetes_version": registration.kubernetes_version,
            },
        )
        audit.record(
            actor=audit.Actor(system="agent", source_ip=source_ip),
            organization=plane.organization,
            action="agent.registered",
            target=plane,
            data={"credential": issued.credential.id, "agent_version": registration.agent_version},
        )
    return issued


# --- credentials ----------------------------------------------------------------------------
class _CredentialLookup:
    """The credential and its compute plane in one query, compiled once per process.

    Every agent request authenticates. Through the ORM the two-table lookup cost ~0.4 ms of
    CPU to compile per request, the largest single item of a heartbeat (bench/RESULTS.md).
    As for API tokens (tenancy/authentication.py ``_TokenLookup``) the SQL is compiled once
    by the ORM itself, so it stays what the ORM would send, and rows become model instances
    through ``Model.from_db``. PostgreSQL returns typed values that need no ORM converters;
    other databases (SQLite in the sandbox) keep the ORM path.
    """

    _PLACEHOLDER = "__credential_id__"

    def __init__(self) -> None:
        self._sql: str | None = None
        self._models: list[tuple[type[Model], list[str]]] = [
            (model, [f.attname for f in model._meta.concrete_fields])
            for model in (AgentCredential, ComputePlane)
        ]

    def _compiled_sql(self) -> str:
        if self._sql is None:
            credential_cols, plane_cols = (cols for _, cols in self._models)
            query = AgentCredential.objects.filter(pk=self._PLACEHOLDER).values_list(
                *credential_cols, *(f"compute_plane__{c}" for c in plane_cols)
            )
            sql, params = query.query.sql_with_params()
            if tuple(params) != (self._PLACEHOLDER,):  # pragma: no cover - a Django change
                raise RuntimeError(f"unexpected credential query parameters: {params!r}")
            self._sql = sql
        return self._sql

    def fetch(self, credential_id: str) -> AgentCredential | None:
        if connection.vendor != "postgresql":
            return (
                AgentCredential.objects.select_related("compute_plane")
                .filter(pk=credential_id)
                .first()
            )
        with connection.cursor() as cursor:
            cursor.execute(self._compiled_sql(), [credential_id])
            row = cursor.fetchone()
        if row is None:
            return None
        (credential_model, credential_cols), (plane_model, plane_cols) = self._models
        split = len(credential_cols)
        credential = credential_model.from_db(connection.alias, credential_cols, row[:split])
        plane = plane_model.from_db(connection.alias, plane_cols, row[split:])
        assert isinstance(credential, AgentCredential)
        credential.compute_plane = plane  # type: ignore[assignment]
        return credential


_credential_lookup = _CredentialLookup()


def authenticate_credential(secret: str, *, now: datetime | None = None) -> AgentCredential:
    """The live credential behind ``secret`` (with its compute plane), or AgentAuthError."""
    now = _now(now)
    parsed = _split_secret(secret, CREDENTIAL_SCHEME)
    if parsed is None:
        raise AgentAuthError("Malformed agent credential.")
    credential = _credential_lookup.fetch(f"agc_{parsed[0]}")
    if credential is None or not hmac.compare_digest(credential.digest, digest_of(secret)):
        raise AgentAuthError("Invalid agent credential.")
    if credential.revoked_at is not None:
        raise AgentAuthError("This agent credential was revoked.")
    if credential.expires_at <= now:
        raise AgentAuthError("This agent credential has expired.")
    if credential.compute_plane.deleted_at is not None:
        raise AgentAuthError("This compute plane was deleted.")
    if credential.first_used_at is None:
        # Once per credential: proves the agent received it (see rotate_if_due).
        AgentCredential.objects.filter(pk=credential.pk, first_used_at__isnull=True).update(
            first_used_at=now
        )
        credential.first_used_at = now
    return credential


def check_agent_id(credential: AgentCredential, agent_id: str) -> None:
    """A credential speaks for its own compute plane's agent only."""
    if agent_id != agent_id_for(credential.compute_plane_id):
        raise ForeignComputePlane("This credential belongs to another compute plane's agent.")


def rotate_if_due(
    credential: AgentCredential, *, now: datetime | None = None
) -> IssuedCredential | None:
    """A replacement for ``credential`` once it is in the last third of its life, else None.

    The old credential stays valid for the overlap, so requests in flight and a retry after a
    lost response still authenticate. If the agent presents a credential that was already
    replaced but the replacement was never used, the response carrying it was lost: the unused
    replacement is revoked and a new one issued.
    """
    now = _now(now)
    overlap = timedelta(seconds=settings.LAKEPLANE_AGENT_CREDENTIAL_OVERLAP_SECONDS)
    if not rotation_due(
        expires_at=credential.expires_at, replaced=credential.replaced_by_id is not None, now=now
    ):
        return None
    with transaction.atomic():
        current = AgentCredential.objects.select_for_update().get(pk=credential.pk)
        if current.replaced_by_id is not None:
            replacement = AgentCredential.objects.select_for_update().get(pk=current.replaced_by_id)
            if replacement.first_used_at is not None:
                return None  # the agent has it; an old credential is just finishing its overlap
            replacement.revoked_at = now
            replacement.save(update_fields=["revoked_at"])
        issued = _issue_credential(current.compute_plane_id, now)
        current.replaced_by = issued.credential
        current.expires_at = min(current.expires_at, now + overlap)
        current.save(update_fields=["replaced_by", "expires_at"])
        credentials.forget(current.pk)
    return issued


def revoke_agent_credentials(
    compute_plane: ComputePlane, *, actor: audit.Actor, now: datetime | None = None
) -> int:
    """Revoke every live credential of ``compute_plane`` at once (e.g. a leaked Secret)."""
    now = _now(now)
    with transaction.atomic():
        count = AgentCredential.objects.filter(
            compute_plane=compute_plane, revoked_at__isnull=True
        ).update(revoked_at=now)
        credentials.forget_compute_plane(compute_plane.pk)
        audit.record(
            actor=actor,
            organization=compute_plane.organization,
            action="agent.credentials_revoked",
            target=compute_plane,
            data={"count": count},
        )
    return count


def revoke_credential(credential_id: str, *, now: datetime | None = None) -> None:
    AgentCredential.objects.filter(pk=credential_id, revoked_at__isnull=True).update(
        revoked_at=_now(now)
    )
    credentials.forget(credential_id)


# --- desired state --------------------------------------------------------------------------
def _empty_desired_state(plane: ComputePlane) -> contract.DesiredState:
    return contract.DesiredState(compute_plane_id=plane.id, version=0, vpc_cidr=plane.vpc_cidr)


def publish_desired_state(
    compute_plane: ComputePlane,
    document: contract.DesiredState,
    *,
    now: datetime | None = None,
) -> contract.DesiredState:
    """Store ``document`` as the compute plane's desired state under the next version.

    The version in ``document`` is ignored: the new one is the stored one plus one, taken
    under a row lock, so two publishers never hand out the same version. Waiting long polls
    are notified after commit.
    """
    if document.compute_plane_id != compute_plane.id:
        raise ValueError("the desired state names another compute plane")
    with transaction.atomic():
        DesiredState.objects.get_or_create(compute_plane_id=compute_plane.id)
        row = DesiredState.objects.select_for_update().get(pk=compute_plane.id)
        row.version += 1
        published = document.model_copy(update={"version": row.version})
        row.document = published.model_dump(mode="json")
        row.updated_at = _now(now)
        row.save()
        longpoll.notify_on_commit(compute_plane.id, row.version)
    return published


def desired_state_version(compute_plane_id: str) -> int:
    version = (
        DesiredState.objects.filter(pk=compute_plane_id).values_list("version", flat=True).first()
    )
    return version or 0


def current_desired_state(plane: ComputePlane) -> contract.DesiredState:
    row = DesiredState.objects.filter(pk=plane.id).first()
    if row is None:
        return _empty_desired_state(plane)
    return contract.DesiredState.model_validate(row.document)


# --- reports --------------------------------------------------------------------------------


def _heartbeat_params(heartbeat: contract.Heartbeat) -> dict[str, Any]:
    return {
        "sent_at": heartbeat.sent_at,
        "applied_version": heartbeat.applied_version,
        "contract_version": heartbeat.contract_version,
        "agent_status": AgentStatus.CONNECTED.value,
        "agent_version": heartbeat.agent_version,
    }


def record_heartbeat(
    credential: AgentCredential, heartbeat: contract.Heartbeat, *, now: datetime | None = None
) -> bool:
    """Mark the agent connected. Returns False (and changes nothing) for a replayed or late one."""
    now = _now(now)
    check_agent_id(credential, heartbeat.agent_id)
    plane_id = credential.compute_plane_id
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _heartbeat_sql(gated=False),
                {"plane": plane_id, "now": now, **_heartbeat_params(heartbeat)},
            )
            row = cursor.fetchone()
        return bool(row and row[0])
    presence = {
        "heartbeat_sent_at": heartbeat.sent_at,
        "applied_version": heartbeat.applied_version,
        "contract_version": heartbeat.contract_version,
    }
    with transaction.atomic():
        # Registration creates the presence row, so the usual heartbeat is one conditional
        # UPDATE; the row is only created here for agents registered before it existed.
        newer = AgentPresence.objects.filter(
            Q(heartbeat_sent_at__isnull=True) | Q(heartbeat_sent_at__lt=heartbeat.sent_at),
            compute_plane_id=plane_id,
        ).update(**presence)
        if not newer:
            _, created = AgentPresence.objects.get_or_create(
                compute_plane_id=plane_id, defaults=presence
            )
            if not created:
                return False
        ComputePlane.objects.filter(pk=plane_id).update(
            agent_status=AgentStatus.CONNECTED,
            agent_version=heartbeat.agent_version,
            agent_last_seen_at=now,
        )
    return True


# The hot-path statements are formatted once per process (table names never change).
@functools.cache
def _gate_sql() -> str:
    return statements.CREDENTIAL_GATE.format(
        credential=AgentCredential._meta.db_table, plane=ComputePlane._meta.db_table
    )


@functools.cache
def _heartbeat_sql(*, gated: bool) -> str:
    presence_write = statements.PRESENCE_WRITE.format(
        presence=AgentPresence._meta.db_table,
        plane=ComputePlane._meta.db_table,
        from_gate="\n    FROM cred" if gated else "",
    )
    if gated:
        return statements.FAST_HEARTBEAT.format(gate=_gate_sql(), presence_write=presence_write)
    return statements.HEARTBEAT.format(presence_write=presence_write)


@functools.cache
def _status_sql(*, gated: bool) -> str:
    tables = {
        "report": AgentReport._meta.db_table,
        "observed_upsert": statements.OBSERVED_UPSERT.format(observed=ObservedState._meta.db_table),
    }
    if gated:
        return statements.FAST_STATUS.format(gate=_gate_sql(), **tables)
    return statements.STATUS.format(**tables)


@dataclass(frozen=True)
class PresentedCredential:
    """What a request claims, read from its secret and agent id without a query."""

    credential_id: str
    digest: str
    compute_plane_id: str


def presented_credential(secret: str, agent_id: str) -> PresentedCredential | None:
    """The credential id, digest and compute plane a request names; None for a malformed
    credential or an agent id that names no plane (the full path answers those)."""
    parsed = _split_secret(secret, CREDENTIAL_SCHEME)
    prefix, _, body = agent_id.partition("_")
    if parsed is None or prefix != "agt" or not body:
        return None
    return PresentedCredential(f"agc_{parsed[0]}", digest_of(secret), f"cp_{body}")


def _gate_params(secret: str, agent_id: str, now: datetime) -> dict[str, Any] | None:
    """Parameters of the credential gate for the one-statement paths, or None when those do
    not apply: not PostgreSQL, or nothing presented_credential can read."""
    presented = presented_credential(secret, agent_id)
    if presented is None or connection.vendor != "postgresql":
        return None
    return {
        "credential": presented.credential_id,
        "digest": presented.digest,
        "plane": presented.compute_plane_id,
        "now": now,
    }


@dataclass(frozen=True)
class FastHeartbeat:
    credential_id: str
    rotation_due: bool


def fast_heartbeat(
    secret: str, heartbeat: contract.Heartbeat, *, now: datetime | None = None
) -> FastHeartbeat | None:
    """Authenticate and record a heartbeat in one statement (PostgreSQL).

    None when anything is off — the caller then runs the full path (authenticate_credential,
    check_agent_id, record_heartbeat), which gives the precise answer and writes nothing twice:
    this statement wrote nothing when it returns None. A replayed or late heartbeat still
    authenticates and changes nothing, as in record_heartbeat.
    """
    now = _now(now)
    gate = _gate_params(secret, heartbeat.agent_id, now)
    if gate is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_heartbeat_sql(gated=True), {**gate, **_heartbeat_params(heartbeat)})
        row = cursor.fetchone()
    if row is None:
        return None
    credential_id, expires_at, replaced_by_id, _ = row
    due = rotation_due(expires_at=expires_at, replaced=replaced_by_id is not None, now=now)
    return FastHeartbeat(credential_id, rotation_due=due)


@dataclass(frozen=True)
class ReportOutcome:
    result: dict[str, Any]
    replayed: bool


def _record_report(
    credential: AgentCredential,
    kind: ReportKind,
    report_id: str,
    now: datetime,
    apply: Any,
    refused: scope.Refused = scope.NONE,
) -> ReportOutcome:
    """Store the report's record and apply it once; a replay returns the stored result."""
    plane_id = credential.compute_plane_id
    result = report_result(report_id, now, refused)
    try:
        with transaction.atomic():
            record = AgentReport.objects.create(
                compute_plane_id=plane_id,
                kind=kind,
                report_id=report_id,
                received_at=now,
                result=result,
            )
            apply(record)
    except IntegrityError:
        # Another request with this id committed first (a retry racing the original).
        pass
    else:
        refused.count()
        return ReportOutcome(result, replayed=False)
    return _replayed(plane_id, kind, report_id)


def _replayed(plane_id: str, kind: ReportKind, report_id: str) -> ReportOutcome:
    existing = AgentReport.objects.get(compute_plane_id=plane_id, kind=kind, report_id=report_id)
    return ReportOutcome(existing.result, replayed=True)


def report_result(
    report_id: str, now: datetime, refused: scope.Refused = scope.NONE
) -> dict[str, Any]:
    """A report's answer (stored, so a replay gets it again); ``refused`` lists the entries
    that named another plane's resources and were dropped (scope.py)."""
    result: dict[str, Any] = {
        "report_id": report_id,
        "received_at": now.isoformat().replace("+00:00", "Z"),
    }
    if refused:
        result["refused"] = refused.as_result()
    return result


def announce_status_batch(reports: Sequence[tuple[str, contract.StatusReport]]) -> None:
    """Send ``status_reported`` for applied reports, at once (the caller has committed them).

    Each compute plane at most once: its newest applied report. Nothing is sent for none.
    """
    if reports:
        status_reported.send(sender=ObservedState, reports=reports)


def _announce_status(plane_id: str, report: contract.StatusReport) -> None:
    transaction.on_commit(lambda: announce_status_batch([(plane_id, report)]))


def _status_statement(
    plane_id: str,
    report: contract.StatusReport,
    now: datetime,
    gate: dict[str, Any] | None,
) -> ReportOutcome | None:
    """Record and apply a status report in one PostgreSQL statement; behind the credential
    gate when ``gate`` is given (None when the credential does not hold)."""
    from psycopg.types.json import Jsonb

    report, refused = scope.confine_status(plane_id, report)
    result = report_result(report.report_id, now, refused)
    sql = _status_sql(gated=gate is not None)
    params: dict[str, Any] = {
        **(gate or {}),
        "plane": plane_id,
        "kind": ReportKind.STATUS.value,
        "report_id": report.report_id,
        "now": now,
        "result": Jsonb(result),
        "document": Jsonb(report.model_dump(mode="json")),
        "sent_at": report.sent_at,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    recorded, applied = row[0], row[1]
    if not recorded:
        return _replayed(plane_id, ReportKind.STATUS, report.report_id)
    refused.count()
    if applied:
        _announce_status(plane_id, report)
    return ReportOutcome(result, replayed=False)


def fast_status(
    secret: str, report: contract.StatusReport, *, now: datetime | None = None
) -> ReportOutcome | None:
    """Authenticate and record a status report in one statement (PostgreSQL), or None: then
    nothing was written and the caller takes the full path for the precise answer."""
    now = _now(now)
    gate = _gate_params(secret, report.agent_id, now)
    if gate is None:
        return None
    return _status_statement(gate["plane"], report, now, gate)


def record_status(
    credential: AgentCredential, report: contract.StatusReport, *, now: datetime | None = None
) -> ReportOutcome:
    """Keep the newest observed state; older reports (by ``sent_at``) are recorded, not applied."""
    now = _now(now)
    check_agent_id(credential, report.agent_id)
    plane_id = credential.compute_plane_id
    if connection.vendor == "postgresql":
        outcome = _status_statement(plane_id, report, now, gate=None)
        assert outcome is not None  # without a gate the statement always answers
        return outcome
    report, refused = scope.confine_status(plane_id, report)
    document = report.model_dump(mode="json")

    def apply(record: AgentReport) -> None:
        updated = ObservedState.objects.filter(
            compute_plane_id=plane_id, observed_at__lt=report.sent_at
        ).update(document=document, observed_at=report.sent_at, received_at=now)
        if not updated:
            _, created = ObservedState.objects.get_or_create(
                compute_plane_id=plane_id,
                defaults={"document": document, "observed_at": report.sent_at, "received_at": now},
            )
            if not created:
                return  # a newer report is already stored
        _announce_status(plane_id, report)

    return _record_report(credential, ReportKind.STATUS, report.report_id, now, apply, refused)


def record_scaling(
    credential: AgentCredential, report: contract.ScalingReport
) -> contract.ScalingAnswer:
    """Hand an autoscaling decision to the app that owns clusters and return its answer (a
    report sent again is answered the same way: that app keys the decision by report_id)."""
    check_agent_id(credential, report.agent_id)
    for _, answer in scaling_reported.send(
        sender=AgentCredential, compute_plane_id=credential.compute_plane_id, report=report
    ):
        if isinstance(answer, contract.ScalingAnswer):
            return answer
    return contract.ScalingAnswer(
        report_id=report.report_id,
        cluster_id=report.cluster_id,
        accepted=False,
        workers=report.from_count,
        message="Nothing on this control plane takes scaling decisions.",
    )


def record_usage(
    credential: AgentCredential, report: contract.UsageReport, *, now: datetime | None = None
) -> ReportOutcome:
    now = _now(now)
    check_agent_id(credential, report.agent_id)
    plane_id = credential.compute_plane_id
    report, refused = scope.confine_usage(plane_id, report)

    def apply(record: AgentReport) -> None:
        UsageRecord.objects.bulk_create(
            UsageRecord(
                compute_plane_id=plane_id,
                report=record,
                resource_id=sample.subject_id or plane_id,
                role=sample.role or "",
                instance_type=sample.instance_type,
                nodes=sample.nodes,
                seconds=sample.seconds,
                period_start=report.period_start,
                period_end=report.period_end,
                recorded_at=now,
            )
            for sample in report.samples
        )
        usage_reported.send(
            sender=UsageRecord,
            compute_plane_id=plane_id,
            period_start=report.period_start,
            period_end=report.period_end,
        )

    return _record_report(credential, ReportKind.USAGE, report.report_id, now, apply, refused)


# --- housekeeping ---------------------------------------------------------------------------
def stale_threshold() -> timedelta:
    return timedelta(
        seconds=settings.LAKEPLANE_AGENT_HEARTBEAT_SECONDS
        * settings.LAKEPLANE_AGENT_STALE_INTERVALS
    )


def mark_stale_agents(*, now: datetime | None = None) -> int:
    """Connected agents with no heartbeat for N intervals become ``stale``; returns how many."""
    cutoff = _now(now) - stale_threshold()
    return ComputePlane.objects.filter(
        agent_status=AgentStatus.CONNECTED,
        agent_last_seen_at__lt=cutoff,
        deleted_at__isnull=True,
    ).update(agent_status=AgentStatus.STALE)


def prune_reports(*, now: datetime | None = None) -> int:
    deleted, _ = AgentReport.objects.filter(received_at__lt=_now(now) - REPORT_RETENTION).delete()
    return deleted


def _listener_answer(signal: Signal, plane_id: str, document: Any) -> dict[str, Any]:
    sent: list[tuple[Any, Any]] = signal.send(
        sender=AgentReport, compute_plane_id=plane_id, report=document
    )
    answers = [a for _, a in sent if a is not None]
    if not answers:  # pragma: no cover - the gateways app is always installed
        raise LakeplaneError("Nothing takes this report here.")
    answer: dict[str, Any] = answers[0]
    return answer


def record_queries(credential: AgentCredential, report: contract.QueryReport) -> dict[str, Any]:
    """Query records of the plane's gateway: idempotent by (plane, query id), so a retried
    report stores nothing twice; a record naming a cluster of another plane is refused."""
    check_agent_id(credential, report.agent_id)
    return _listener_answer(queries_reported, credential.compute_plane_id, report)


def request_wake(credential: AgentCredential, request: contract.WakeRequest) -> dict[str, Any]:
    """Start a sleeping cluster of the plane for a query waiting at the gateway (once, however
    many replicas ask)."""
    check_agent_id(credential, request.agent_id)
    return _listener_answer(wake_requested, credential.compute_plane_id, request)
