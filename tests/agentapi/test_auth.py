"""Registration, credentials, rotation and revocation over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.agentapi import services
from controlplane.agentapi.models import AgentCredential, digest_of
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.audit import Actor
from controlplane.core.errors import PROBLEM_CONTENT_TYPE
from tests.agentapi.conftest import (
    DESIRED,
    HEARTBEAT,
    REGISTER,
    Agent,
    agent_client,
    register,
    registration,
)
from tests.factories import ComputePlaneFactory

pytestmark = pytest.mark.django_db


def heartbeat(agent: Agent, client: APIClient | None = None, **extra: object) -> object:
    body = {
        "agent_id": agent.agent_id,
        "agent_version": "0.1.0",
        "sent_at": timezone.now().isoformat(),
        **extra,
    }
    return (client or agent.client).post(HEARTBEAT, body, format="json")


def assert_problem(response: object, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["status"] == status
    return body


def test_register_returns_a_credential_once_and_stores_only_its_digest(plane: ComputePlane):
    token = services.issue_bootstrap_token(plane)
    plane.refresh_from_db()
    assert plane.bootstrap_token_digest == digest_of(token)

    response = APIClient().post(REGISTER, registration(token, "1.2.3"), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["compute_plane_id"] == plane.id
    assert body["agent_id"] == services.agent_id_for(plane.id)
    stored = AgentCredential.objects.get(compute_plane=plane)
    assert stored.digest == digest_of(body["credential"])
    assert body["credential"] not in stored.digest
    plane.refresh_from_db()
    assert (plane.agent_status, plane.agent_version) == ("connected", "1.2.3")
    assert plane.bootstrap_token_digest == ""
    # The credential works.
    agent = Agent(plane, body["agent_id"], body["credential"], agent_client(body["credential"]))
    assert heartbeat(agent).status_code == 200


def test_a_bootstrap_token_works_once(plane: ComputePlane):
    token = services.issue_bootstrap_token(plane)
    assert APIClient().post(REGISTER, registration(token), format="json").status_code == 201

    again = APIClient().post(REGISTER, registration(token), format="json")

    assert_problem(again, 401)
    assert again["WWW-Authenticate"]
    assert AgentCredential.objects.filter(compute_plane=plane).count() == 1


def test_an_expired_bootstrap_token_is_refused(plane: ComputePlane):
    an_hour_ago = timezone.now() - timedelta(hours=2)
    token = services.issue_bootstrap_token(plane, now=an_hour_ago)

    response = APIClient().post(REGISTER, registration(token), format="json")

    assert "expired" in assert_problem(response, 401)["detail"]
    assert not AgentCredential.objects.exists()


@pytest.mark.parametrize(
    "token",
    ["lpb_nothing_here_at_all_0000", "not-a-bootstrap-token-at-all", "lpb__" + "x" * 40],
)
def test_unknown_or_malformed_bootstrap_tokens_are_refused(plane: ComputePlane, token: str):
    services.issue_bootstrap_token(plane)
    assert_problem(APIClient().post(REGISTER, registration(token), format="json"), 401)


def test_a_bootstrap_token_of_another_plane_does_not_register_this_one(plane: ComputePlane):
    other = ComputePlaneFactory()
    token = services.issue_bootstrap_token(other)
    services.issue_bootstrap_token(plane)
    forged = token.replace(other.id.removeprefix("cp_"), plane.id.removeprefix("cp_"))
    assert_problem(APIClient().post(REGISTER, registration(forged), format="json"), 401)


def test_bad_registration_body_is_a_400_with_field_errors(plane: ComputePlane):
    response = APIClient().post(REGISTER, {"bootstrap_token": "short"}, format="json")
    body = assert_problem(response, 400)
    assert {"bootstrap_token", "agent_version", "kubernetes_version"} <= set(body["errors"])


def test_another_planes_credential_gets_403(agent: Agent):
    other = register(ComputePlaneFactory())

    # The other agent's credential, speaking for this plane's agent.
    response = heartbeat(agent, client=other.client)
    assert_problem(response, 403)
    poll = other.client.get(DESIRED, {"agent_id": agent.agent_id, "wait": 0})
    assert_problem(poll, 403)
    agent.plane.refresh_from_db()
    assert agent.plane.agent_version == "0.1.0"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer lpa_unknown_" + "x" * 43, "Bearer garbage", "Bearer lpt_abc_def"],
)
def test_missing_unknown_or_malformed_credentials_get_401(agent: Agent, header: str | None):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = heartbeat(agent, client=client)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="lakeplane-agent"'


def test_a_forged_secret_for_a_real_credential_id_gets_401(agent: Agent):
    scheme, body, _ = agent.secret.split("_", 2)
    forged = f"{scheme}_{body}_{'A' * 43}"
    assert_problem(heartbeat(agent, client=agent_client(forged)), 401)


def test_revoked_credentials_get_401(agent: Agent, owner):
    assert heartbeat(agent).status_code == 200

    count = services.revoke_agent_credentials(agent.plane, actor=Actor(user=owner.user))

    assert count == 1
    assert "revoked" in assert_problem(heartbeat(agent), 401)["detail"]
    assert_problem(agent.client.get(DESIRED, {"wait": 0}), 401)


def test_an_expired_credential_gets_401(agent: Agent):
    AgentCredential.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in assert_problem(heartbeat(agent), 401)["detail"]


def _age(credential_id: str, by: timedelta) -> None:
    """Move a credential's clock: as if it had been issued ``by`` earlier."""
    credential = AgentCredential.objects.get(pk=credential_id)
    credential.created_at -= by
    credential.expires_at -= by
    credential.save()


def test_rotation_on_heartbeat_with_overlap_then_the_old_credential_is_refused(
    agent: Agent, settings
):
    settings.LAKEPLANE_AGENT_CREDENTIAL_TTL_SECONDS = 7 * 24 * 3600
    settings.LAKEPLANE_AGENT_CREDENTIAL_OVERLAP_SECONDS = 600
    old = AgentCredential.objects.get(compute_plane=agent.plane)

    # Early in its life: no rotation.
    assert heartbeat(agent).json()["credential"] is None

    # In its last third: the heartbeat's answer carries a new credential.
    _age(old.id, timedelta(days=5))
    response = heartbeat(agent)
    assert response.status_code == 200
    issued = response.json()["credential"]
    assert issued is not None
    assert issued["credential"] != agent.secret
    new_client = agent_client(issued["credential"])
    old.refresh_from_db()
    assert old.replaced_by_id is not None
    assert old.expires_at <= timezone.now() + timedelta(seconds=600)

    # During the overlap both work; the new one, once used, is not rotated again.
    assert heartbeat(agent, client=new_client).json()["credential"] is None
    assert heartbeat(agent).json()["credential"] is None

    # After the overlap the old one is refused, the new one still works.
    _age(old.id, timedelta(seconds=601))
    assert "expired" in assert_problem(heartbeat(agent), 401)["detail"]
    assert heartbeat(agent, client=new_client).status_code == 200
    # The same rule through the service with an explicit clock.
    later = timezone.now() + timedelta(seconds=601)
    assert services.authenticate_credential(issued["credential"], now=later)


def test_a_replacement_lost_in_transit_is_replaced_again(agent: Agent):
    old = AgentCredential.objects.get(compute_plane=agent.plane)
    _age(old.id, timedelta(days=6))
    first = heartbeat(agent).json()["credential"]

    # The agent never got ``first`` and keeps using the old credential.
    second = heartbeat(agent).json()["credential"]

    assert second is not None
    assert second["credential"] != first["credential"]
    assert_problem(heartbeat(agent, client=agent_client(first["credential"])), 401)
    assert heartbeat(agent, client=agent_client(second["credential"])).status_code == 200
