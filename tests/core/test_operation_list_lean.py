"""The operations list's lean entry point answers exactly as the DRF view it stands in for.

The usual token-authenticated GET is served without DRF, authenticated and read in one
statement (controlplane/tenancy/api/operations.py); anything else is handed to the DRF view. These
tests send the same requests through the lean entry point and, with it switched off, through
DRF alone, and compare status, headers and bytes, including every refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.core import observability
from controlplane.core.audit import Actor
from controlplane.core.roles import Role
from controlplane.tenancy import services
from controlplane.tenancy.api import operations as views
from controlplane.tenancy.models import ApiToken
from tests.factories import OperationFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="the lean path is PostgreSQL's"
)


class LeanSpy:
    """Counts the requests the lean entry point answered itself."""

    def __init__(self) -> None:
        self.answered = 0


@pytest.fixture(autouse=True)
def _one_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request here gets the same X-Request-ID, as if each sent the same header: the two
    answers compared must be identical to the byte, and a fresh id per request would differ."""
    monkeypatch.setattr(observability, "new_request_id", lambda: "lean-compare-request-id")


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> LeanSpy:
    spy = LeanSpy()
    real = views._lean_list

    def counting(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)
        spy.answered += answer is not None
        return answer

    monkeypatch.setattr(views, "_lean_list", counting)
    return spy


def through_drf(client: Any, url: str, **extra: Any) -> Any:
    """The same request with the lean entry point switched off: DRF answers it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(views, "_lean_list", lambda *args, **kwargs: None)
        return client.get(url, **extra)


def assert_same_answer(lean_answer: Any, drf_answer: Any) -> None:
    assert lean_answer.status_code == drf_answer.status_code
    assert lean_answer["X-Request-ID"] == "lean-compare-request-id"
    assert sorted(lean_answer.headers.items()) == sorted(drf_answer.headers.items())
    assert lean_answer.content == drf_answer.content


def seed(org: Any, count: int) -> list[Any]:
    return [OperationFactory(organization=org) for _ in range(count)]


@ON_POSTGRESQL
def test_every_page_is_byte_identical(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    seed(org, 5)
    seed(OrganizationFactory(), 2)  # another org's: never on the page
    url = f"/api/v1/orgs/{org.slug}/operations?limit=2"
    seen: list[str] = []
    # Forward through all pages, then back through the previous links.
    for direction in ("next", "previous"):
        while url:
            answer = caller.client.get(url)
            assert_same_answer(answer, through_drf(caller.client, url))
            assert answer.status_code == 200
            body = answer.json()
            if direction == "next":
                seen += [item["id"] for item in body["results"]]
            url = body[direction]
            if direction == "next" and url is None:
                url = body["previous"]
                break
    assert len(seen) == 5
    assert len(set(seen)) == 5
    assert lean.answered >= 5
    # The default page size, an oversize limit and an empty organization.
    for path in ("operations", "operations?limit=500"):
        url = f"/api/v1/orgs/{org.slug}/{path}"
        assert_same_answer(caller.client.get(url), through_drf(caller.client, url))
    empty = OrganizationFactory()
    empty_caller = make_caller(empty, Role.OWNER, via="token")
    url = f"/api/v1/orgs/{empty.slug}/operations"
    answer = empty_caller.client.get(url)
    assert answer.json() == {"results": [], "next": None, "previous": None}
    assert_same_answer(answer, through_drf(empty_caller.client, url))


@ON_POSTGRESQL
def test_stored_and_rebuilt_representations_are_served_alike(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    caller = make_caller(org, Role.MEMBER, via="token")
    seed(org, 3)  # the factory leaves representation empty: the first read rebuilds it
    url = f"/api/v1/orgs/{org.slug}/operations"
    first = caller.client.get(url)
    assert lean.answered == 1
    from controlplane.core.models import Operation

    assert not Operation.objects.filter(organization=org, representation=None).exists()
    again = caller.client.get(url)
    assert again.content == first.content
    assert_same_answer(again, through_drf(caller.client, url))


@ON_POSTGRESQL
def test_one_statement_authenticates_and_reads_the_page(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    seed(org, 3)
    url = f"/api/v1/orgs/{org.slug}/operations"
    assert caller.client.get(url).status_code == 200  # stores the representations
    with CaptureQueriesContext(connection) as queries:
        assert caller.client.get(url).status_code == 200
    statements = [q for q in queries.captured_queries if q["sql"] != "SELECT 1"]
    assert len(statements) == 1, statements
    assert lean.answered == 2
    # On PostgreSQL it is a prepared statement: planned once per connection (core/db.py).
    assert statements[0].get("prepared") is (True if connection.vendor == "postgresql" else None)


def _refused(client: Any, url: str, status: int, lean: LeanSpy, **extra: Any) -> None:
    before = lean.answered
    answer = client.get(url, **extra)
    assert answer.status_code == status, answer.content
    assert lean.answered == before, "the lean path must hand refusals to DRF"
    assert_same_answer(answer, through_drf(client, url, **extra))


def test_refusals_are_drfs(org: Any, make_caller: Callable[..., Any], lean: LeanSpy) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    seed(org, 2)
    other = OrganizationFactory()
    seed(other, 2)
    url = f"/api/v1/orgs/{org.slug}/operations"
    # Another org's slug (with operations in it): 404, as if it did not exist.
    _refused(caller.client, f"/api/v1/orgs/{other.slug}/operations", 404, lean)
    _refused(caller.client, "/api/v1/orgs/no-such-org/operations", 404, lean)
    # An invalid cursor: 404 from the paginator, after authentication.
    _refused(caller.client, f"{url}?cursor=not-base64!", 404, lean)
    # Not a Lakeplane token, a malformed one, a wrong secret: 401.
    token = ApiToken.objects.get(created_by=caller.user)
    for header in ("Bearer lpt_nope", "Bearer lpt_abcd_wrong", f"Bearer lpt_{token.prefix}_x"):
        _refused(APIClient(), url, 401, lean, HTTP_AUTHORIZATION=header)
    _refused(APIClient(), url, 401, lean)  # no credential at all
    # Content negotiation and other methods stay DRF's.
    _refused(caller.client, url, 406, lean, HTTP_ACCEPT="text/html")
    assert caller.client.post(url, {}, format="json").status_code == 403  # a viewer's POST
    assert caller.client.head(url).status_code == 200
    assert lean.answered == 0


def test_a_role_too_low_is_refused_by_drf(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every role may list operations today; the lean path reads the same role map as DRF,
    # so raising the requirement refuses a viewer through either path.
    caller = make_caller(org, Role.VIEWER, via="token")
    seed(org, 1)
    monkeypatch.setattr(
        views.OperationViewSet,
        "required_roles",
        {**views.OperationViewSet.required_roles, "GET": Role.ADMIN},
    )
    _refused(caller.client, f"/api/v1/orgs/{org.slug}/operations", 403, lean)


@ON_POSTGRESQL
def test_revoked_expired_or_deactivated_is_refused_on_the_next_request(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    url = f"/api/v1/orgs/{org.slug}/operations"
    seed(org, 1)
    for change in ("revoke", "expire", "deactivate"):
        caller = make_caller(org, Role.OWNER, via="token")
        token = ApiToken.objects.get(created_by=caller.user)
        before = lean.answered
        assert caller.client.get(url).status_code == 200
        assert lean.answered == before + 1
        if change == "revoke":
            services.revoke_token(actor=Actor(user=caller.user), token=token)
        elif change == "expire":
            ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
        else:
            type(caller.user).objects.filter(pk=caller.user.pk).update(is_active=False)
        _refused(caller.client, url, 401, lean)


@ON_POSTGRESQL
def test_last_used_at_is_recorded_as_by_drf(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    token = ApiToken.objects.get(created_by=caller.user)
    url = f"/api/v1/orgs/{org.slug}/operations"
    assert token.last_used_at is None
    assert caller.client.get(url).status_code == 200
    assert lean.answered == 1
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    assert timezone.now() - first < timedelta(seconds=5)
    # Within the resolution: not written again.
    assert caller.client.get(url).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == first
    # Older than the resolution: written again.
    stale = first - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert caller.client.get(url).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert token.last_used_at > first
    assert lean.answered == 3


def test_session_callers_and_other_parameters_go_through_drf(
    org: Any, make_caller: Callable[..., Any], lean: LeanSpy
) -> None:
    seed(org, 2)
    session = make_caller(org, Role.VIEWER, via="session")
    answer = session.client.get(f"/api/v1/orgs/{org.slug}/operations")
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 2
    token = make_caller(org, Role.VIEWER, via="token")
    answer = token.client.get(f"/api/v1/orgs/{org.slug}/operations?format=json")
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 2
    assert lean.answered == 0


def test_the_route_keeps_its_viewset() -> None:
    from django.urls import resolve

    match = resolve(f"/api/v1/orgs/{OrganizationFactory.build().slug}/operations")
    assert match.url_name == "operation-list"
    assert match.func.cls is views.OperationViewSet  # type: ignore[attr-defined]
    assert match.func.actions["get"] == "list"  # type: ignore[attr-defined]
