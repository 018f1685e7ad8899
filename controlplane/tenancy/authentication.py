"""``Authorization: Bearer lpt_…`` API tokens."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from controlplane.tenancy.models import TOKEN_PREFIX, ApiToken, Organization, User

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

    def _compiled_sql(self) -> str:
        if self._sql is None:
            token_cols, org_cols, user_cols = (cols for _, cols in self._models)
            query = ApiToken.objects.filter(prefix=self._PLACEHOLDER).values_list(
                *token_cols,
                *(f"organization__{c}" for c in org_cols),
                *(f"created_by__{c}" for c in user_cols),
            )
            sql, params = query.query.sql_with_params()
            if tuple(params) != (self._PLACEHOLDER,):  # pragma: no cover - a Django change
                raise RuntimeError(f"unexpected token query parameters: {params!r}")
            self._sql = sql
        return self._sql

    def fetch(self, prefix: str) -> ApiToken | None:
        if connection.vendor != "postgresql":
            return (
                ApiToken.objects.select_related("organization", "created_by")
                .filter(prefix=prefix)
                .first()
            )
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
        token.organization = organization  # type: ignore[assignment]
        token.created_by = user  # type: ignore[assignment]
        return token


_lookup = _TokenLookup()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        credential = credential.strip()
        parts = credential.split("_")
        if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        token = _lookup.fetch(parts[1])
        if token is None or not hmac.compare_digest(token.digest, ApiToken.digest_of(credential)):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if not token.created_by.is_active:
            raise exceptions.AuthenticationFailed("The owner of this API token is deactivated.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="lakeplane"'
