"""Shared fixtures: organizations with members of each role, API clients, tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from controlplane.core.audit import Actor
from controlplane.core.roles import Role
from controlplane.tenancy import services
from controlplane.tenancy.models import Organization, User
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

# The AWS emulator (moto behind the sandbox layer): sandbox, sandbox_cloud, aws_clients.
pytest_plugins = ["controlplane.sandbox.pytest_plugin"]


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
