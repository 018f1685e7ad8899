"""Server-side prepared execution for the few hot, fixed statements (PostgreSQL).

Django turns psycopg's prepared statements off (``prepare_threshold = None``) so that
transaction-mode connection poolers keep working, and its cursors bind parameters on the client,
so PostgreSQL parses and plans every query afresh. For a statement that runs on nearly every
request of a hot endpoint, planning can cost more than executing: the authenticated operations
page plans in ~0.5 ms and runs in ~0.3 ms (bench/RESULTS.md). ``fetch_prepared`` runs such a
statement through a server-binding cursor with ``prepare=True``, so each database connection
plans it once.

Only statements passed here are prepared: the connection's threshold is raised from "never"
to "only when asked", which Django's client-binding cursors never ask. A deployment behind a
transaction-mode pooler sets ``LAKEPLANE_DB_PREPARED_STATEMENTS=false`` (the statement then runs
like any other). Other databases run the statement as usual.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import connection

# psycopg prepares a query once it has run this many times unasked: never, in practice.
ONLY_WHEN_ASKED = 2**62


def fetch_prepared(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` with ``params``, as a server-side prepared statement on PostgreSQL."""
    if connection.vendor != "postgresql" or not settings.LAKEPLANE_DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall()
    if connection.queries_logged:  # as Django's debug cursor records it (CaptureQueriesContext)
        connection.queries_log.append(
            {"sql": sql, "time": f"{time.monotonic() - started:.3f}", "prepared": True}
        )
    return rows
