"""Hot fixed statements run as server-side prepared statements on PostgreSQL (core/db.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection

from controlplane.core.db import fetch_prepared
from controlplane.tenancy.models import Organization

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")


def prepared_like(fragment: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        return int(cursor.fetchone()[0])


def test_a_statement_is_prepared_once_per_connection_and_answers_as_usual() -> None:
    marker = f"m{uuid.uuid4().hex[:12]}"
    sql = f"SELECT %(a)s::int + 1 AS {marker}"
    assert fetch_prepared(sql, {"a": 1}) == [(2,)]
    assert fetch_prepared(sql, {"a": 41}) == [(42,)]
    assert prepared_like(marker) == 1


def test_django_queries_stay_unprepared() -> None:
    fetch_prepared("SELECT 1", {})
    before = prepared_like("")
    for _ in range(10):
        list(Organization.objects.filter(slug="nobody"))
    assert prepared_like("") == before


def test_the_switch_turns_it_off(settings: Any) -> None:
    settings.LAKEPLANE_DB_PREPARED_STATEMENTS = False
    marker = f"m{uuid.uuid4().hex[:12]}"
    assert fetch_prepared(f"SELECT %(a)s::int AS {marker}", {"a": 7}) == [(7,)]
    assert prepared_like(marker) == 0


def test_errors_are_djangos_and_the_connection_stays_usable() -> None:
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic():
        fetch_prepared("SELECT * FROM no_such_table_here", {})
    assert fetch_prepared("SELECT %(a)s::int", {"a": 3}) == [(3,)]
