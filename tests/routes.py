"""Discovery of the org-scoped API routes registered in the URLconf.

Tests that must hold for every endpoint (tenant isolation, query counts) walk this list, so a
route added later is covered without anyone remembering to add it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from controlplane.tenancy.viewsets import OrgScopedViewSet


@dataclass(frozen=True)
class OrgRoute:
    name: str
    view_class: type[OrgScopedViewSet]
    actions: dict[str, str]  # HTTP method → viewset action
    lookup_kwarg: str | None  # the object's id in the path, None for collection routes
    pattern: str

    @property
    def model(self) -> Any:
        return self.view_class.queryset.model  # type: ignore[union-attr]

    @property
    def lookup_field(self) -> str:
        return self.view_class.lookup_field


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def org_scoped_routes() -> list[OrgRoute]:
    routes = []
    for pattern, entry in _walk(get_resolver().url_patterns):
        view_class = getattr(entry.callback, "cls", None)
        if not (isinstance(view_class, type) and issubclass(view_class, OrgScopedViewSet)):
            continue
        actions = getattr(entry.callback, "actions", None) or {}
        groups = set(entry.pattern.regex.groupindex)
        lookup = view_class.lookup_url_kwarg or view_class.lookup_field
        routes.append(
            OrgRoute(
                name=entry.name or pattern,
                view_class=view_class,
                actions={m.upper(): a for m, a in actions.items()},
                lookup_kwarg=lookup if lookup in groups else None,
                pattern=pattern,
            )
        )
    return routes
