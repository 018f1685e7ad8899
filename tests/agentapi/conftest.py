"""A compute plane, its bootstrap token, and a registered agent's client."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from controlplane.agentapi import services
from controlplane.computeplanes.models import ComputePlane
from tests.factories import ComputePlaneFactory

REGISTER = "/api/agent/v1/register"
DESIRED = "/api/agent/v1/desired-state"
HEARTBEAT = "/api/agent/v1/heartbeat"
STATUS = "/api/agent/v1/status"
USAGE = "/api/agent/v1/usage"


@dataclass
class Agent:
    plane: ComputePlane
    agent_id: str
    secret: str
    client: APIClient


def registration(token: str, version: str = "0.1.0") -> dict[str, str]:
    return {"bootstrap_token": token, "agent_version": version, "kubernetes_version": "1.31"}


def agent_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def register(plane: ComputePlane) -> Agent:
    token = services.issue_bootstrap_token(plane)
    response = APIClient().post(REGISTER, registration(token), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    return Agent(plane, body["agent_id"], body["credential"], agent_client(body["credential"]))


@pytest.fixture
def plane(db: None) -> ComputePlane:
    return ComputePlaneFactory()


@pytest.fixture
def agent(plane: ComputePlane) -> Agent:
    return register(plane)
