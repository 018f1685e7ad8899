"""Tenant isolation, proven for every org-scoped route in the URLconf.

For each route and each HTTP method it serves, a caller from another organization (a user
session, and an API token) who names the victim's org, or names their own org with the
victim's object id, gets 404 — the same answer as for something that does not exist — and
the victim's data is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db.models import Model
from django.forms.models import model_to_dict
from django.urls import reverse

from controlplane.core.roles import Role
from controlplane.tenancy.models import Organization
from tests.factories import ORG_SCOPED_FACTORIES, OrganizationFactory
from tests.routes import OrgRoute, org_scoped_routes

ROUTES = org_scoped_routes()
# A body that would pass most serializers, so a 404 cannot hide behind a 400.
PLAUSIBLE_BODY = {"name": "intruder", "role": "viewer", "email": "intruder@example.com"}


def test_routes_are_discovered():
    names = {route.name for route in ROUTES}
    # The foundation's org-scoped endpoints; later ones are picked up the same way.
    assert {
        "organization-detail",
        "member-list",
        "member-detail",
        "token-list",
        "token-detail",
        "operation-list",
        "operation-detail",
        "operation-retry",
        "audit-event-list",
    } <= names


def _snapshot(org: Organization) -> dict[str, Any]:
    """Every org-scoped row of the victim's org, as plain values."""
    state: dict[str, Any] = {}
    for model in ORG_SCOPED_FACTORIES:
        if model is Organization:
            rows = model.objects.filter(pk=org.pk)
        else:
            rows = model.objects.filter(organization=org)
        state[model.__name__] = sorted(repr(sorted(model_to_dict(row).items())) for row in rows)
    return state


def _victim_object(route: OrgRoute, org: Organization) -> Model:
    factory = ORG_SCOPED_FACTORIES.get(route.model)
    assert factory is not None, (
        f"{route.model.__name__} (route {route.name}) has no factory in "
        "tests/factories.py ORG_SCOPED_FACTORIES; add one so isolation is tested."
    )
    return factory(org)


# Path parameters that are not an object id, with a valid example value.
EXAMPLE_PATH_VALUES = {"month": "2026-11", "fmt": "csv"}


def _url(route: OrgRoute, org_slug: str, obj: Model | None) -> str:
    kwargs = {"org": org_slug}
    for name in EXAMPLE_PATH_VALUES.keys() & set(re.findall(r"\(\?P<(\w+)>", route.pattern)):
        kwargs[name] = EXAMPLE_PATH_VALUES[name]
    if route.lookup_kwarg is not None:
        assert obj is not None
        kwargs[route.lookup_kwarg] = str(getattr(obj, route.lookup_field))
    # Routes nested under a compute plane (the gateway's) name the victim's plane.
    if "cp_id" in re.findall(r"<(?:\w+:)?(\w+)>", route.pattern):
        assert obj is not None
        kwargs["cp_id"] = str(obj.compute_plane_id)
    return reverse(route.name, kwargs=kwargs)


def _call(client: Any, method: str, url: str) -> Any:
    if method in ("POST", "PUT", "PATCH"):
        return getattr(client, method.lower())(url, PLAUSIBLE_BODY, format="json")
    return getattr(client, method.lower())(url)


@pytest.mark.django_db
@pytest.mark.parametrize("via", ["session", "token"])
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_foreign_org_gets_404_and_changes_nothing(route, via, make_caller):
    victim_org = OrganizationFactory()
    make_caller(victim_org, Role.OWNER)
    victim = _victim_object(route, victim_org)
    intruder = make_caller(OrganizationFactory(), Role.OWNER, via=via)
    before = _snapshot(victim_org)

    for method in route.actions:
        if method in ("HEAD", "OPTIONS"):
            continue
        # 1. Naming the victim's organization.
        response = _call(intruder.client, method, _url(route, victim_org.slug, victim))
        assert response.status_code == 404, (method, route.pattern, response.content)
        assert response["Content-Type"] == "application/problem+json"
        # 2. Naming their own organization with the victim's object id.
        if route.lookup_kwarg is not None:
            url = _url(route, intruder.org.slug, victim)
            response = _call(intruder.client, method, url)
            assert response.status_code == 404, (method, url, response.content)

    assert _snapshot(victim_org) == before


@pytest.mark.django_db
def test_unknown_org_and_unknown_object_look_the_same(owner, make_caller):
    missing_org = owner.client.get("/api/v1/orgs/no-such-org/operations")
    foreign = make_caller(OrganizationFactory(), Role.OWNER)
    foreign_org = owner.client.get(f"/api/v1/orgs/{foreign.org.slug}/operations")
    assert missing_org.status_code == foreign_org.status_code == 404
    assert missing_org.json() == foreign_org.json()


def test_scoping_cannot_be_overridden():
    from controlplane.tenancy.viewsets import OrgScopedViewSet

    with pytest.raises(TypeError, match="safely_get_queryset"):

        class Leaky(OrgScopedViewSet):  # pragma: no cover - refused at class creation
            def get_queryset(self):
                return super().get_queryset()

    with pytest.raises(TypeError):

        class AlsoLeaky(OrgScopedViewSet):  # pragma: no cover - refused at class creation
            def get_object(self):
                return None
