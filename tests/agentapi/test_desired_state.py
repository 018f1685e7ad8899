"""The desired-state long poll: ETag, immediate answers, 304 after the wait, no connection held."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import redis
import requests
from django.db import connection

from computeplane_agent import contract
from controlplane.agentapi import services
from controlplane.agentapi.models import DesiredState
from controlplane.computeplanes.models import ComputePlane
from tests.agentapi.conftest import DESIRED, Agent, register
from tests.factories import ComputePlaneFactory

REDIS_URL = "redis://127.0.0.1:6379/12"


def document(plane: ComputePlane, workers: int) -> contract.DesiredState:
    return contract.DesiredState(
        compute_plane_id=plane.id,
        version=0,
        vpc_cidr=plane.vpc_cidr,
        clusters=[
            contract.ClusterSpec(
                id="cl_0123456789abcdefghjkmnpqrs",
                name="analytics",
                engine="trino",
                version="475",
                state="running",
                coordinator=contract.NodeSpec(instance_type="m6i.xlarge"),
                workers=contract.WorkerSpec(instance_type="r6i.2xlarge", replicas=workers),
                node_group="lp-analytics",
            )
        ],
    )


@pytest.mark.django_db
class TestInProcess:
    def test_no_etag_gets_the_current_document_at_once(self, agent: Agent):
        response = agent.client.get(DESIRED, {"wait": 20})
        assert response.status_code == 200
        assert response["ETag"] == '"0"'
        assert response.json()["compute_plane_id"] == agent.plane.id
        assert response.json()["clusters"] == []

    def test_a_new_version_is_returned_at_once_with_its_etag(self, agent: Agent):
        services.publish_desired_state(agent.plane, document(agent.plane, 3))
        services.publish_desired_state(agent.plane, document(agent.plane, 5))

        response = agent.client.get(DESIRED, {"wait": 20}, HTTP_IF_NONE_MATCH='"1"')

        assert response.status_code == 200
        assert response["ETag"] == '"2"'
        body = contract.DesiredState.model_validate(response.json())
        assert body.version == 2
        assert body.clusters[0].workers.replicas == 5

    def test_unchanged_answers_304_after_the_wait(self, agent: Agent):
        services.publish_desired_state(agent.plane, document(agent.plane, 3))
        response = agent.client.get(DESIRED, {"wait": 1}, HTTP_IF_NONE_MATCH='W/"1"')
        assert response.status_code == 304
        assert response["ETag"] == '"1"'
        assert response.content == b""

    def test_wait_is_validated(self, agent: Agent):
        for bad in ("soon", "-1"):
            response = agent.client.get(DESIRED, {"wait": bad})
            assert response.status_code == 400
            assert "wait" in response.json()["errors"]

    def test_versions_are_per_compute_plane_and_bump_by_one(self, agent: Agent):
        other = ComputePlaneFactory()
        versions = [
            services.publish_desired_state(agent.plane, document(agent.plane, n)).version
            for n in range(3)
        ]
        assert versions == [1, 2, 3]
        assert services.publish_desired_state(other, document(other, 1)).version == 1
        assert DesiredState.objects.get(pk=agent.plane.id).document["version"] == 3

    def test_a_document_for_another_plane_is_refused(self, agent: Agent):
        other = ComputePlaneFactory()
        with pytest.raises(ValueError, match="another compute plane"):
            services.publish_desired_state(agent.plane, document(other, 1))


# --- against a live server (its own threads and connections) ----------------------------------
def _server_connections(dsn: str) -> int:
    """Connections to the test database other than this test's own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def test_dsn(transactional_db: None) -> str:
    if connection.vendor != "postgresql":
        pytest.skip("counts connections in pg_stat_activity")
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "dbname", "password")}
    )


@pytest.fixture
def live_agent(transactional_db: None, live_server) -> tuple[Agent, str]:
    agent = register(ComputePlaneFactory())
    connection.close()  # this test's own connection must not be counted as the server's
    return agent, live_server.url


def _poll(url: str, agent: Agent, etag: str, wait: int, out: list) -> None:
    response = requests.get(
        f"{url}{DESIRED}",
        params={"wait": wait},
        headers={"Authorization": f"Bearer {agent.secret}", "If-None-Match": etag},
        timeout=wait + 10,
    )
    out.append(response)


def _wait_until_waiting(dsn: str, seen_connection: list[int], seconds: float = 5.0) -> None:
    """Let the request authenticate and reach its wait (it then holds no connection)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        seen_connection.append(_server_connections(dsn))
        if len(seen_connection) >= 5:
            return


@pytest.mark.parametrize("notify", ["redis", "poll"])
def test_long_poll_waits_without_a_database_connection_and_wakes_on_publish(
    live_agent, test_dsn, settings, notify
):
    settings.LAKEPLANE_AGENT_NOTIFY_URL = REDIS_URL if notify == "redis" else ""
    if notify == "redis":
        redis.Redis.from_url(REDIS_URL).ping()
    agent, url = live_agent
    services.publish_desired_state(agent.plane, document(agent.plane, 3))
    connection.close()

    results: list = []
    poller = threading.Thread(target=_poll, args=(url, agent, '"1"', 20, results))
    poller.start()
    counts: list[int] = []
    _wait_until_waiting(test_dsn, counts)
    assert poller.is_alive(), "the poll answered before anything changed"
    if notify == "redis":
        # While waiting on Redis the request holds no database connection at all.
        assert counts[-3:] == [0, 0, 0]
    else:
        # The fallback opens a connection for one primary-key read per second, then closes it.
        assert min(counts) == 0

    services.publish_desired_state(agent.plane, document(agent.plane, 7))
    connection.close()
    poller.join(timeout=15)

    assert not poller.is_alive()
    response = results[0]
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.json()["clusters"][0]["workers"]["replicas"] == 7


def test_long_poll_answers_304_after_the_wait_on_a_live_server(live_agent, settings):
    settings.LAKEPLANE_AGENT_NOTIFY_URL = REDIS_URL
    agent, url = live_agent
    results: list = []
    _poll(url, agent, '"0"', 1, results)
    assert results[0].status_code == 304
    assert results[0].headers["ETag"] == '"0"'
