"""Shared fixtures: organizations with members of each role, API clients, tokens."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from controlplane.core.audit import Actor
from controlplane.core.roles import Role
from controlplane.tenancy import services
from controlplane.tenancy.models import Organization, User
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

# The AWS emulator (moto behind the sandbox layer): sandbox, sandbox_cloud, aws_clients; the
# DNS and OpenID discovery servers of the SSO tests: dns_zone, discovery.
pytest_plugins = ["controlplane.sandbox.pytest_plugin", "tests.sso.servers"]


@pytest.fixture(autouse=True)
def _agent_ingest_mode(request: pytest.FixtureRequest, settings: Any) -> None:
    """Agent reports are written one per request in unit tests, so a test can read what a
    report changed right after posting it. End-to-end tests (and tests marked
    ``buffered_ingest``) run the product's default: write-behind batches (agentapi/ingest.py)."""
    node = request.node
    if not (node.get_closest_marker("e2e") or node.get_closest_marker("buffered_ingest")):
        settings.LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS = 0


@pytest.fixture(autouse=True)
def _own_rate_limits(settings: Any) -> None:
    """Each test counts its own attempts (the Redis of a test run outlives a test's database)."""
    settings.LAKEPLANE_RATE_LIMIT_PREFIX = f"test-{uuid.uuid4().hex}"


@pytest.fixture(scope="session", autouse=True)
def _stop_agent_ingest(django_db_setup: None) -> Iterator[None]:
    """Flush and stop the write-behind thread before the test database is dropped (it holds
    its own connection)."""
    yield
    from controlplane.agentapi import ingest

    ingest.buffer.stop()


@dataclass
class Caller:
    """Someone calling the API: a user and a client authenticated as them."""

    user: User
    client: APIClient
    role: Role
    org: Organization


def _token_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def org(db: None) -> Organization:
    return OrganizationFactory()


@pytest.fixture
def make_caller(db: None) -> Callable[..., Caller]:
    """make_caller(org, role, via="session"|"token") → a Caller of that role in org."""

    def make(org: Organization, role: Role = Role.OWNER, via: str = "session") -> Caller:
        user = UserFactory()
        MembershipFactory(organization=org, user=user, role=role)
        if via == "token":
            issued = services.create_token(
                actor=Actor(user=user),
                organization=org,
                created_by=user,
                name=f"{role} token",
                role=role,
                acting_role=role,
                expires_in_days=30,
            )
            client = _token_client(issued.secret)
        else:
            client = APIClient()
            client.force_authenticate(user=user)
        return Caller(user=user, client=client, role=role, org=org)

    return make


@pytest.fixture
def owner(org: Organization, make_caller: Callable[..., Caller]) -> Caller:
    return make_caller(org, Role.OWNER)


@pytest.fixture
def token_client() -> Callable[[str], APIClient]:
    return _token_client
