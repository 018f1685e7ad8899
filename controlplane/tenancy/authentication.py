"""``Authorization: Bearer lpt_…`` API tokens."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Model, OuterRef, Subquery
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from controlplane.core.roles import Role, role_rank
from controlplane.tenancy.models import TOKEN_PREFIX, ApiToken, Membership, Organization, User

# last_used_at is written at most once a minute per token: a precise-to-the-second value is
# not worth a database write on every API call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class _TokenLookup:
    """The token, its organization and its creator in one query, compiled once per process.

    Every API call authenticates, and the ORM compiles the same three-table query each time:
    0.5 ms of CPU against 0.1 ms for running it (bench/RESULTS.md), a quarter of a whole list
    request. The SQL is compiled once by the ORM itself (so it stays what the ORM would send)
    and rows become model instances through ``Model.from_db``. PostgreSQL returns typed values
    that need no ORM converters; other databases (SQLite in the sandbox) keep the ORM path.
    """

    _PLACEHOLDER = "__prefix__"

    def __init__(self) -> None:
        self._sql: str | None = None
        self._models: list[tuple[type[Model], list[str]]] = [
            (model, [f.attname for f in model._meta.concrete_fields])
            for model in (ApiToken, Organization, User)
        ]

    @staticmethod
    def _queryset() -> Any:
        """Tokens with their creator's current role in the token's organization."""
        owner_role = Membership.objects.filter(
            organization_id=OuterRef("organization_id"), user_id=OuterRef("created_by_id")
        ).values("role")[:1]
        return ApiToken.objects.annotate(owner_role_now=Subquery(owner_role))

    def _compiled_sql(self) -> str:
        if self._sql is None:
            token_cols, org_cols, user_cols = (cols for _, cols in self._models)
            query = (
                self._queryset()
                .filter(prefix=self._PLACEHOLDER)
                .values_list(
                    *token_cols,
                    *(f"organization__{c}" for c in org_cols),
                    *(f"created_by__{c}" for c in user_cols),
                    "owner_role_now",
                )
            )
            sql, params = query.query.sql_with_params()
            if tuple(params) != (self._PLACEHOLDER,):  # pragma: no cover - a Django change
                raise RuntimeError(f"unexpected token query parameters: {params!r}")
            self._sql = sql
        return self._sql

    def fetch(self, prefix: str) -> ApiToken | None:
        if connection.vendor != "postgresql":
            found = (
                self._queryset()
                .select_related("organization", "created_by")
                .filter(prefix=prefix)
                .first()
            )
            if found is not None:
                found.owner_role = found.owner_role_now
            return found
        with connection.cursor() as cursor:
            cursor.execute(self._compiled_sql(), [prefix])
            row = cursor.fetchone()
        if row is None:
            return None
        instances = []
        start = 0
        for model, columns in self._models:
            values = row[start : start + len(columns)]
            start += len(columns)
            instances.append(model.from_db(connection.alias, columns, values))
        token, organization, user = instances
        assert isinstance(token, ApiToken)
        token.owner_role = row[start]
        token.organization = organization  # type: ignore[assignment]
        token.created_by = user  # type: ignore[assignment]
        return token


_lookup = _TokenLookup()


@dataclass(frozen=True)
class BearerCredential:
    """A well-formed ``lpt_<prefix>_<secret>`` credential: its lookup prefix and digest."""

    prefix: str
    digest: str


def bearer_credential(header: str) -> BearerCredential | None:
    """The credential of an ``Authorization: Bearer lpt_…`` header; None for anything else
    (no header, another scheme, a malformed token), which :meth:`BearerTokenAuthentication.
    authenticate` answers with its exact outcome."""
    credential = _bearer(header)
    prefix = _prefix_of(credential) if credential is not None else None
    if credential is None or prefix is None:
        return None
    return BearerCredential(prefix=prefix, digest=ApiToken.digest_of(credential))


def _bearer(header: str) -> str | None:
    """The credential after ``Bearer`` (any case), stripped; None for another scheme."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != BearerTokenAuthentication.keyword.lower():
        return None
    return credential.strip()


def _prefix_of(credential: str) -> str | None:
    """The lookup prefix of an ``lpt_<prefix>_<secret>`` credential; None if malformed."""
    parts = credential.split("_")
    if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
        return None
    return parts[1]


def valid_token_sql() -> str:
    """SQL selecting a token only if it passes every check of ``authenticate`` and belongs to
    the organization addressed by slug (``resolve_org_role``'s 404 otherwise).

    For hot read paths that authenticate and read in one statement: parameters ``prefix``,
    ``digest``, ``now`` and ``org`` (see :func:`valid_token_params`); columns ``id``,
    ``organization_id``, ``role`` (the effective role: capped by the creator's current
    membership, no row without one) and ``use_unrecorded`` (:func:`use_unrecorded` in SQL: pass
    it to :func:`record_use`). No row means "not served here": the caller hands the request
    to the DRF view, which authenticates again and answers with the precise 401 or 404.
    Nothing is remembered between requests, so a revoked token or a deactivated owner is
    refused on the very next request, as by ``authenticate``.
    """
    return _USABLE_CREDENTIAL_SQL.format(
        token=ApiToken._meta.db_table,
        organization=Organization._meta.db_table,
        user=User._meta.db_table,
        membership=Membership._meta.db_table,
        token_rank=_rank_sql("t.role"),
        member_rank=_rank_sql("m.role"),
    )


def _rank_sql(column: str) -> str:
    """``role_rank`` in SQL (roles are our own constants, never user input)."""
    whens = " ".join(f"WHEN '{role.value}' THEN {role_rank(role)}" for role in Role)
    return f"CASE {column} {whens} END"


# ``last_used_at < now - resolution`` is use_unrecorded()'s ``now - last_used_at > resolution``.
_USABLE_CREDENTIAL_SQL = """SELECT t.id, t.organization_id,
        CASE WHEN {token_rank} <= {member_rank} THEN t.role ELSE m.role END AS role,
        (t.last_used_at IS NULL OR t.last_used_at < %(unrecorded_before)s) AS use_unrecorded
    FROM {token} t
    JOIN {organization} o ON o.id = t.organization_id
    JOIN {user} u ON u.id = t.created_by_id
    JOIN {membership} m ON m.organization_id = t.organization_id AND m.user_id = t.created_by_id
    WHERE t.prefix = %(prefix)s AND t.digest = %(digest)s AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > %(now)s) AND u.is_active
      AND o.slug = %(org)s"""


def valid_token_params(
    credential: BearerCredential, org_slug: str, now: datetime
) -> dict[str, Any]:
    """The parameters of :func:`valid_token_sql`."""
    return {
        "prefix": credential.prefix,
        "digest": credential.digest,
        "now": now,
        "unrecorded_before": now - LAST_USED_RESOLUTION,
        "org": org_slug,
    }


def use_unrecorded(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` is due in ``last_used_at`` (older than the resolution)."""
    return last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION


def record_use(token_id: str, now: datetime) -> None:
    ApiToken.objects.filter(pk=token_id).update(last_used_at=now)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        credential = _bearer(header)
        if credential is None:
            return None
        prefix = _prefix_of(credential)
        if prefix is None:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        token = _lookup.fetch(prefix)
        if token is None or not hmac.compare_digest(token.digest, ApiToken.digest_of(credential)):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if not token.created_by.is_active:
            raise exceptions.AuthenticationFailed("The owner of this API token is deactivated.")
        if token.owner_role is None:
            raise exceptions.AuthenticationFailed(
                "The owner of this API token is no longer a member of its organization."
            )
        if use_unrecorded(token.last_used_at, now):
            record_use(token.pk, now)
            token.last_used_at = now
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="lakeplane"'
