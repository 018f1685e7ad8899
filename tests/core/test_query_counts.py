"""Every org-scoped list endpoint answers in a fixed number of SQL queries, however many rows.

The endpoints are found in the URLconf (views deriving from ``OrgScopedViewSet`` whose action
map routes ``list``), so a list added later is checked without touching this file. Each one is
seeded with 10 and then 200 rows through ``ORG_SCOPED_FACTORIES`` (operations come with their
steps) and fetched with ``?limit=200``: an N+1 shows up as a count that grows with the rows.

Run with ``-s`` to see the counts; they are also recorded as the test's ``sql_queries``
property (``--junitxml``) and noted in bench/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from controlplane.core.roles import Role
from controlplane.tenancy.viewsets import OrgScopedViewSet
from tests.factories import ORG_SCOPED_FACTORIES, OrganizationFactory

ROW_COUNTS = (10, 200)
LIMIT = 200
# Authentication (1), the page (1) and one query per prefetched relation, with room for a
# couple more relations; anything near this is worth a look even when it stays flat.
MAX_QUERIES = 6


@dataclass(frozen=True)
class ListEndpoint:
    url_name: str
    view: type[OrgScopedViewSet]

    @property
    def model(self) -> type[Model]:
        return self.view.queryset.model  # type: ignore[union-attr]

    def __str__(self) -> str:
        return self.url_name


def _walk(patterns: Sequence[Any], namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            yield namespace, entry


def discover_list_endpoints() -> list[ListEndpoint]:
    found: dict[str, ListEndpoint] = {}
    for namespace, pattern in _walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "cls", None)
        actions = getattr(pattern.callback, "actions", None) or {}
        if not (isinstance(view, type) and issubclass(view, OrgScopedViewSet)):
            continue
        if "list" not in actions.values():
            continue
        if not pattern.name:
            raise AssertionError(f"{view.__name__}'s list route has no URL name to reverse")
        found[f"{namespace}{pattern.name}"] = ListEndpoint(f"{namespace}{pattern.name}", view)
    return sorted(found.values(), key=str)


LIST_ENDPOINTS = discover_list_endpoints()


def _url_kwargs(url_name: str) -> set[str]:
    """The path parameters of a named route."""
    names: set[str] = set()
    for possibility, _pattern, _defaults, _converters in get_resolver().reverse_dict.getlist(
        url_name
    ):
        for _, params in possibility:
            names.update(params)
    return names


def test_discovery_finds_the_known_list_endpoints() -> None:
    # Guards the discovery itself: if it silently found nothing, the test below would be empty.
    names = {str(endpoint) for endpoint in LIST_ENDPOINTS}
    assert {"operation-list", "audit-event-list", "member-list", "token-list"} <= names


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=str)
def test_list_queries_do_not_grow_with_rows(
    endpoint: ListEndpoint,
    make_caller: Callable[..., Any],
    record_property: Callable[[str, object], None],
) -> None:
    factory = ORG_SCOPED_FACTORIES.get(endpoint.model)
    if factory is None:
        pytest.fail(
            f"{endpoint.model.__module__}.{endpoint.model.__name__} (listed by "
            f"{endpoint.view.__name__} at '{endpoint.url_name}') has no factory: add one to "
            "ORG_SCOPED_FACTORIES in tests/factories.py that makes an instance in the given "
            "organization, with the related rows its list renders."
        )
    org = OrganizationFactory()
    caller = make_caller(org, Role.OWNER, via="token")
    kwargs = {"org": org.slug}
    seeded = 0
    if "cp_id" in _url_kwargs(endpoint.url_name):
        # A list nested under a compute plane: the factory puts one org's rows on one plane.
        kwargs["cp_id"] = factory(org).compute_plane_id  # type: ignore[attr-defined]
        seeded = 1
    try:
        url = reverse(endpoint.url_name, kwargs=kwargs)
    except NoReverseMatch:
        pytest.fail(
            f"'{endpoint.url_name}' needs URL arguments besides {{org}} (a nested list?): "
            "teach this test how to make its parent object."
        )

    counts: dict[int, int] = {}
    for rows in ROW_COUNTS:
        for _ in range(rows - seeded):
            factory(org)
        seeded = rows
        # A first call settles per-token bookkeeping (last_used_at), which is not per row.
        assert caller.client.get(f"{url}?limit={LIMIT}").status_code == 200
        with CaptureQueriesContext(connection) as captured:
            response = caller.client.get(f"{url}?limit={LIMIT}")
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) >= min(rows, LIMIT)
        counts[rows] = len(captured)

    print(
        f"\nSQL queries for {url}?limit={LIMIT}: "
        + ", ".join(f"{rows} rows -> {count}" for rows, count in counts.items())
    )
    record_property("sql_queries", counts)
    few, many = counts[ROW_COUNTS[0]], counts[ROW_COUNTS[-1]]
    assert few == many, (
        f"{endpoint.url_name}: {few} queries for {ROW_COUNTS[0]} rows but {many} for "
        f"{ROW_COUNTS[-1]}: a query per row (select_related/prefetch_related missing?)"
    )
    assert many <= MAX_QUERIES, f"{endpoint.url_name}: {many} queries for one page"
