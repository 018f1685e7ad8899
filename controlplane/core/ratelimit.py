"""Atomic rate limits on the endpoints a guesser or a flood aims at (docs/security.md).

Password sign-in, API token creation and agent registration each allow ``count`` attempts per
``seconds`` per key (a client address, a user). The window starts at a key's first attempt
and ends ``seconds`` later; every attempt in it counts, allowed or not, so 50 attempts at once
against 10 per minute let exactly 10 through, however many web processes they land on.

The counter is one atomic step, never a read followed by a write (DRF's throttles read the
cache, decide, then write, so concurrent attempts all pass):

* **Redis** (when the broker is Redis): ``SET key 0 EX seconds NX``, ``INCR key`` and
  ``PTTL key`` in one MULTI/EXEC.
* **The database** otherwise: one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` that starts a
  new window or adds one to the current one (PostgreSQL and SQLite run the same statement;
  PostgreSQL locks the row, so concurrent attempts queue on it).

An attempt over the limit is answered ``429`` problem+json with ``Retry-After`` (the seconds
until the window ends).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass
from typing import Final

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

from controlplane.core.errors import PROBLEM_CONTENT_TYPE, LakeplaneError, problem

SIGN_IN: Final = "sign-in"
TOKEN_CREATE: Final = "token-create"  # noqa: S105 - a scope name, not a secret
AGENT_REGISTER: Final = "agent-register"


class RateLimited(LakeplaneError):
    """Too many attempts in the current window (429 with Retry-After)."""

    status_code = 429
    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}

    def response(self) -> HttpResponse:
        """The 429 for a view outside DRF (the sign-in form): the same problem+json."""
        body = problem(self.status_code, self.title, self.detail, code=self.code)
        return JsonResponse(
            body, status=self.status_code, content_type=PROBLEM_CONTENT_TYPE, headers=self.headers
        )


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"10/60"``: 10 attempts per 60 seconds."""
        count, _, seconds = text.partition("/")
        limit = cls(int(count), int(seconds or 60))
        if limit.count < 1 or limit.seconds < 1:
            raise ValueError(f"a rate limit is N/SECONDS with both at least 1, not {text!r}")
        return limit


@dataclass(frozen=True)
class Attempt:
    """One attempt counted: its number in the window, and the seconds the window has left."""

    number: int
    remaining: float


def limit_of(scope: str) -> Limit:
    return Limit.parse(settings.LAKEPLANE_RATE_LIMITS[scope])


def _key(scope: str, value: str) -> str:
    # The value is a client address, a user id or an email: only a digest is stored. The
    # prefix keeps deployments (and test runs) that share a Redis apart.
    digest = hashlib.sha256(f"{settings.LAKEPLANE_RATE_LIMIT_PREFIX}:{value}".encode())
    return f"{scope}:{digest.hexdigest()[:40]}"


# --- the two counters -------------------------------------------------------------------------
@functools.cache
def _redis(url: str):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _count_in_redis(keys: list[str], limit: Limit) -> list[Attempt]:
    pipe = _redis(settings.LAKEPLANE_RATE_LIMIT_REDIS_URL).pipeline(transaction=True)
    for key in keys:
        name = f"lakeplane:ratelimit:{key}"
        pipe.set(name, 0, ex=limit.seconds, nx=True)
        pipe.incr(name)
        pipe.pttl(name)
    replies = pipe.execute()
    return [
        Attempt(int(replies[i + 1]), max(int(replies[i + 2]), 0) / 1000)
        for i in range(0, len(replies), 3)
    ]


_UPSERT: Final = """
INSERT INTO {table} (bucket, window_start, attempts) VALUES {rows}
ON CONFLICT (bucket) DO UPDATE SET
    attempts = CASE WHEN {table}.window_start <= %(expired)s THEN 1
        ELSE {table}.attempts + 1 END,
    window_start = CASE WHEN {table}.window_start <= %(expired)s
        THEN %(now)s ELSE {table}.window_start END
RETURNING bucket, attempts, window_start
"""
_PRUNE: Final = "DELETE FROM {table} WHERE window_start <= %(stale)s"
# Windows are at most this long; older rows are removed when a key starts a new window.
_PRUNE_AFTER_SECONDS: Final = 24 * 3600


def _count_in_database(keys: list[str], limit: Limit) -> list[Attempt]:
    from controlplane.core.models import RateLimitWindow

    table = connection.ops.quote_name(RateLimitWindow._meta.db_table)
    rows = ", ".join(f"(%(b{i})s, %(now)s, 1)" for i in range(len(keys)))
    now = time.time()
    params: dict[str, str | float] = {f"b{i}": key for i, key in enumerate(keys)}
    params.update(now=now, expired=now - limit.seconds)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(table=table, rows=rows), params)
        counted = {bucket: (number, start) for bucket, number, start in cursor.fetchall()}
        if any(number == 1 for number, _ in counted.values()):
            cursor.execute(_PRUNE.format(table=table), {"stale": now - _PRUNE_AFTER_SECONDS})
    # A concurrent attempt may have opened the window a moment after this one read the clock.
    return [
        Attempt(int(counted[key][0]), min(counted[key][1] + limit.seconds - now, limit.seconds))
        for key in keys
    ]


def count(scope: str, *values: str) -> list[Attempt]:
    """Count one attempt of ``scope`` under each of ``values``, all in one atomic step (so
    concurrent attempts are numbered in the same order under every key)."""
    limit = limit_of(scope)
    keys = sorted({_key(scope, value) for value in values})  # one lock order for all
    if settings.LAKEPLANE_RATE_LIMIT_REDIS_URL:
        return _count_in_redis(keys, limit)
    return _count_in_database(keys, limit)


def check(scope: str, *values: str) -> None:
    """Count an attempt under each of ``values``; RateLimited if any is over its limit."""
    limit = limit_of(scope)
    waits = [a.remaining for a in count(scope, *values) if a.number > limit.count]
    if waits:
        retry_after = max(1, math.ceil(max(waits)))
        raise RateLimited(
            f"Too many attempts; at most {limit.count} per {limit.seconds} seconds. "
            f"Try again in {retry_after} seconds.",
            retry_after=retry_after,
        )
