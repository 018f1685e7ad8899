"""Atomic rate limits on sign-in, token creation and agent registration (core/ratelimit.py).

Real threads against the real counters: Redis (the broker of this test run) and the database
(PostgreSQL here). 50 attempts at once against a limit of 10 per minute let exactly 10 through;
the rest are 429 problem+json with Retry-After.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from controlplane.core import ratelimit
from controlplane.core.roles import Role
from controlplane.tenancy.models import ApiToken
from tests.agentapi.conftest import REGISTER, registration
from tests.factories import ComputePlaneFactory, MembershipFactory, OrganizationFactory, UserFactory

ATTEMPTS = 50
LIMIT = "10/60"


def all_at_once(attempt: Callable[[], Any], n: int = ATTEMPTS) -> list[Any]:
    """Run ``attempt`` in ``n`` threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = attempt()
        except Exception as exc:  # the outcome under test (RateLimited) or a failure to report
            results[index] = exc
        finally:
            connections.close_all()  # this thread's connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture(params=["redis", "database"])
def counter(request: pytest.FixtureRequest, settings: Any) -> str:
    settings.LAKEPLANE_RATE_LIMITS = {**settings.LAKEPLANE_RATE_LIMITS, "sign-in": LIMIT}
    if request.param == "database":
        settings.LAKEPLANE_RATE_LIMIT_REDIS_URL = ""
    else:
        assert settings.LAKEPLANE_RATE_LIMIT_REDIS_URL.startswith("redis://"), (
            "this test needs CELERY_BROKER_URL=redis://…"
        )
    return str(request.param)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_attempts_against_ten_a_minute_let_exactly_ten_through(
    counter: str,
) -> None:
    if counter == "database":
        assert connections["default"].vendor == "postgresql", "run with DATABASE_URL=postgres://…"

    def attempt() -> str:
        ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.7", "email:ada@example.com")
        return "allowed"

    results = all_at_once(attempt)

    outcomes = Counter(type(r).__name__ if isinstance(r, Exception) else r for r in results)
    assert outcomes == {"allowed": 10, "RateLimited": 40}
    waits = {r.retry_after for r in results if isinstance(r, ratelimit.RateLimited)}
    assert all(1 <= wait <= 60 for wait in waits), waits
    # Another key has its own window.
    ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.8")


@pytest.mark.django_db(transaction=True)
def test_a_window_ends_and_counting_starts_again(counter: str, settings: Any) -> None:
    settings.LAKEPLANE_RATE_LIMITS = {**settings.LAKEPLANE_RATE_LIMITS, "sign-in": "2/1"}
    ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.9")
    ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.9")
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.9")
    assert refused.value.retry_after == 1
    # Wait for the one-second window to end by polling the counter, not by timing the test.
    done = threading.Event()
    while not done.wait(0.1):
        try:
            ratelimit.check(ratelimit.SIGN_IN, "ip:192.0.2.9")
        except ratelimit.RateLimited:
            continue
        done.set()
    assert done.is_set()


def test_a_malformed_limit_is_refused() -> None:
    for text in ("0/60", "10/0", "ten"):
        with pytest.raises(ValueError, match=r"rate limit|invalid literal"):
            ratelimit.Limit.parse(text)


class _WideBacklogServer(ThreadedWSGIServer):
    # socketserver's default backlog (5) resets some of 50 simultaneous connections.
    request_queue_size = 128


class _ServerThread(LiveServerThread):
    server_class = _WideBacklogServer


@pytest.fixture
def server(transactional_db: None) -> Iterator[str]:
    """A threaded web server in this process (each request thread has its own connection)."""
    thread = _ServerThread("127.0.0.1", _StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()


def post(url: str, **kwargs: Any) -> requests.Response:
    return requests.post(url, timeout=60, **kwargs)


def assert_ten_through(responses: list[Any], *, allowed: int) -> None:
    """Exactly 10 answered ``allowed``, the other 40 a 429 problem with Retry-After."""
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert Counter(r.status_code for r in responses) == {allowed: 10, 429: 40}
    for response in responses:
        if response.status_code == 429:
            assert_problem_429(response)


def assert_problem_429(response: requests.Response) -> None:
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    body = response.json()
    assert body["status"] == 429
    assert body["type"].endswith("/rate-limited")


def test_fifty_concurrent_token_creations_over_http_let_exactly_ten_through(
    server: str, settings: Any
) -> None:
    settings.LAKEPLANE_RATE_LIMITS = {**settings.LAKEPLANE_RATE_LIMITS, "token-create": LIMIT}
    org, user = OrganizationFactory(), UserFactory()
    MembershipFactory(organization=org, user=user, role=Role.ADMIN)
    from controlplane.core.audit import Actor
    from controlplane.tenancy import services

    issued = services.create_token(
        actor=Actor(user=user),
        organization=org,
        created_by=user,
        name="automation",
        role=Role.ADMIN,
        acting_role=Role.ADMIN,
        expires_in_days=30,
    )
    url = f"{server}/api/v1/orgs/{org.slug}/tokens"
    headers = {"Authorization": f"Bearer {issued.secret}"}

    def attempt() -> requests.Response:
        body = {"name": "ci", "role": "member", "expires_in_days": 7}
        return post(url, json=body, headers=headers)

    assert_ten_through(all_at_once(attempt), allowed=201)
    assert ApiToken.objects.filter(organization=org, name="ci").count() == 10


def test_fifty_concurrent_sign_ins_let_exactly_ten_through(server: str, settings: Any) -> None:
    settings.LAKEPLANE_RATE_LIMITS = {**settings.LAKEPLANE_RATE_LIMITS, "sign-in": LIMIT}
    user = UserFactory(email="ada@example.com")
    user.set_password("correct horse battery staple")
    user.save()
    session = requests.Session()
    session.get(f"{server}/login/", timeout=30)
    csrf = session.cookies["csrftoken"]

    def attempt() -> requests.Response:
        form = {
            "csrfmiddlewaretoken": csrf,
            "username": "ada@example.com",
            "password": "correct horse battery staple",
        }
        return post(
            f"{server}/login/",
            data=form,
            cookies={"csrftoken": csrf},
            headers={"Referer": f"{server}/login/"},
            allow_redirects=False,
        )

    assert_ten_through(all_at_once(attempt), allowed=302)


@pytest.mark.django_db
def test_agent_registration_is_limited_per_client_address(settings: Any) -> None:
    from rest_framework.test import APIClient

    settings.LAKEPLANE_RATE_LIMITS = {**settings.LAKEPLANE_RATE_LIMITS, "agent-register": "2/60"}
    ComputePlaneFactory()
    client = APIClient()
    answers = [
        client.post(REGISTER, registration("lpb_nothing_here"), format="json") for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]
    limited = answers[2]
    assert limited["Content-Type"].startswith("application/problem+json")
    assert 1 <= int(limited["Retry-After"]) <= 60
    # Another address is counted on its own.
    other = client.post(
        REGISTER, registration("lpb_nothing_here"), format="json", REMOTE_ADDR="198.51.100.4"
    )
    assert other.status_code == 401


def test_the_counter_follows_the_broker() -> None:
    if django_settings.CELERY_BROKER_URL.startswith("redis://"):
        assert django_settings.LAKEPLANE_RATE_LIMIT_REDIS_URL == django_settings.CELERY_BROKER_URL
    else:
        assert django_settings.LAKEPLANE_RATE_LIMIT_REDIS_URL == ""
