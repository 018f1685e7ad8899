"""The agent's own metrics, scraped over HTTP from the port it serves them on."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from computeplane_agent.install import install_manifests
from computeplane_agent.metrics import DEFAULT_METRICS_PORT, AgentMetrics
from computeplane_agent.targets.memory import MemoryTarget
from tests.agent.factories import desired_state
from tests.agent.test_agent_loop import FakeControlPlane, _agent


@pytest.fixture
def plane() -> Iterator[FakeControlPlane]:
    server = FakeControlPlane()
    yield server
    server.close()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_reconciles_polls_and_failures_are_measured(plane: FakeControlPlane) -> None:
    agent = _agent(plane, MemoryTarget())
    port = agent.metrics.serve(0, "127.0.0.1")
    before = scrape(port)
    assert before[("lakeplane_agent_applied_version", ())] == -1
    assert before[("lakeplane_agent_last_successful_poll_timestamp_seconds", ())] == 0

    plane.publish(desired_state(version=3))
    assert agent.run_once() == 0
    applied = scrape(port)
    assert applied[("lakeplane_agent_reconciles_total", (("outcome", "ok"),))] == 1
    assert applied[("lakeplane_agent_applied_version", ())] == 3
    assert applied[("lakeplane_agent_objects_applied_total", ())] > 0
    assert applied[("lakeplane_agent_reconcile_seconds_count", ())] == 1
    polled_at = applied[("lakeplane_agent_last_successful_poll_timestamp_seconds", ())]
    assert polled_at > 0

    plane.close()  # the control plane goes away: a temporary failure, counted
    assert agent.run_once() > 0
    down = scrape(port)
    assert down[("lakeplane_agent_reconciles_total", (("outcome", "unavailable"),))] == 1
    assert down[("lakeplane_agent_last_successful_poll_timestamp_seconds", ())] == polled_at
    assert down[("lakeplane_agent_reconciles_total", (("outcome", "ok"),))] == 1


def test_two_agents_in_one_process_keep_their_own_counts() -> None:
    first, second = AgentMetrics(), AgentMetrics()
    first.reconciles.labels("ok").inc()
    assert (
        'lakeplane_agent_reconciles_total{outcome="ok"} 1.0'
        in generate_latest(first.registry).decode()
    )
    assert (
        'lakeplane_agent_reconciles_total{outcome="ok"} 0.0'
        in generate_latest(second.registry).decode()
    )


def test_the_installed_deployment_exposes_the_metrics_port() -> None:
    objects = install_manifests(control_plane_url="https://lakeplane.example", bootstrap_token="t")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert {"name": "metrics", "containerPort": DEFAULT_METRICS_PORT, "protocol": "TCP"} in (
        container["ports"]
    )
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(DEFAULT_METRICS_PORT)
    [config] = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config["data"]["LAKEPLANE_METRICS_PORT"] == str(DEFAULT_METRICS_PORT)
