"""Routing and health: the pure rules the gateway and the control plane's dry run share."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from computeplane_agent.gateway.config import ConfigError, Health, load_config, parse_config
from computeplane_agent.gateway.health import (
    DOWN,
    STARTING,
    UNKNOWN,
    UP,
    ClusterHealth,
    Probe,
    observe,
)
from computeplane_agent.gateway.routing import RequestFacts, route


def cluster(cid: str, state: str = "running", cache: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "name": cid,
        "engine": "trino",
        "url": f"http://{cid}:8080",
        "state": state,
        "cache": cache,
    }


BASE: dict[str, Any] = {
    "version": "v1",
    "listen": {"host": "127.0.0.1", "port": 0},
    "groups": [
        {"name": "adhoc", "fallback": "etl", "clusters": [cluster("a1"), cluster("a2")]},
        {"name": "etl", "fallback": None, "clusters": [cluster("e1")]},
    ],
    "rules": [
        {"name": "etl-users", "priority": 10, "group": "etl", "match": {"user": "etl-.*"}},
        {
            "name": "dashboards",
            "priority": 20,
            "group": "etl",
            "match": {"source": "superset", "client_tags": ["bi"]},
        },
    ],
    "default_group": "adhoc",
    "health": {
        "interval_seconds": 1,
        "timeout_seconds": 1,
        "fail_threshold": 3,
        "success_threshold": 2,
    },
    "wake": {"enabled": True, "max_wait_seconds": 30},
    "query_text": False,
    "agent_url": "http://127.0.0.1:1",
}


def conf(**changes: Any) -> Any:
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return parse_config(raw)


def up(load: int = 0) -> ClusterHealth:
    return ClusterHealth(state=UP, running=load)


def test_rules_apply_in_priority_order_with_ties_by_name() -> None:
    rules = [
        {"name": "zeta", "priority": 5, "group": "adhoc", "match": {"user": "bob"}},
        {"name": "alpha", "priority": 5, "group": "etl", "match": {"user": "bob"}},
        {"name": "first", "priority": 1, "group": "adhoc", "match": {"user": "alice"}},
    ]
    config = conf(rules=rules)
    assert route(config, RequestFacts(user="bob")).group == "etl"
    assert route(config, RequestFacts(user="alice")).group == "adhoc"
    decision = route(config, RequestFacts(user="carol"))
    assert decision.group == "adhoc"
    assert "default group 'adhoc'" in decision.reasons[-2]


def test_match_fields_must_all_hold_and_patterns_match_whole_values() -> None:
    config = conf()
    assert route(config, RequestFacts(user="etl-nightly")).group == "etl"
    assert route(config, RequestFacts(user="x-etl-nightly")).group == "adhoc"
    assert route(config, RequestFacts(source="superset", client_tags=("bi", "x"))).group == "etl"
    assert route(config, RequestFacts(source="superset")).group == "adhoc"
    rules = [
        {
            "name": "h",
            "priority": 1,
            "group": "etl",
            "match": {"headers": {"X-Team": "data"}, "catalog": "tpch"},
        }
    ]
    config = conf(rules=rules)
    assert route(config, RequestFacts(headers={"x-team": "data"}, catalog="tpch")).group == "etl"
    assert (
        route(config, RequestFacts(headers={"x-team": "data"}, catalog="memory")).group == "adhoc"
    )
    assert route(config, RequestFacts(catalog="tpch")).group == "adhoc"


def test_lowest_load_counts_coordinator_queries_and_gateway_in_flight() -> None:
    config = conf()
    assert route(config, RequestFacts(), {"a1": up(5), "a2": up(2)}).cluster_id == "a2"
    assert route(config, RequestFacts(), {"a1": up(1), "a2": up(1)}, {"a2": 3}).cluster_id == "a1"
    # Equal load: the name decides, so the answer is stable.
    assert route(config, RequestFacts(), {"a1": up(0), "a2": up(0)}).cluster_id == "a1"


def test_prefer_cache_picks_a_cluster_with_a_cache_first() -> None:
    groups = copy.deepcopy(BASE["groups"])
    groups[0]["prefer_cache"] = True
    groups[0]["clusters"][1]["cache"] = "ca_1"
    decision = route(conf(groups=groups), RequestFacts(), {"a1": up(0), "a2": up(4)})
    assert decision.cluster_id == "a2"
    assert "cache ca_1" in decision.reasons[-1]


def test_draining_and_down_clusters_get_no_new_queries() -> None:
    groups = copy.deepcopy(BASE["groups"])
    groups[0]["clusters"][0]["state"] = "draining"
    decision = route(conf(groups=groups), RequestFacts(), {"a1": up(0), "a2": up(9)})
    assert decision.cluster_id == "a2"
    assert any("a1 is draining" in r for r in decision.reasons)
    decision = route(conf(), RequestFacts(), {"a1": ClusterHealth(state=DOWN), "a2": up(9)})
    assert decision.cluster_id == "a2"


def test_an_unhealthy_group_falls_back_along_its_chain_never_elsewhere() -> None:
    down = ClusterHealth(state=DOWN, last_error="connection refused")
    config = conf()
    decision = route(config, RequestFacts(), {"a1": down, "a2": down, "e1": up()})
    assert (decision.group, decision.cluster_id) == ("etl", "e1")
    assert any("falling back to group 'etl'" in r for r in decision.reasons)
    # etl has no fallback: nothing, even though adhoc is healthy.
    decision = route(config, RequestFacts(user="etl-x"), {"a1": up(), "a2": up(), "e1": down})
    assert decision.cluster_id is None
    assert decision.wake is None
    assert "connection refused" in " ".join(decision.reasons)


def test_fallback_cycles_are_refused_in_config_and_routing_stays_finite() -> None:
    groups = copy.deepcopy(BASE["groups"])
    groups[1]["fallback"] = "adhoc"
    with pytest.raises(ConfigError) as err:
        conf(groups=groups)
    assert "comes back" in str(err.value)


def test_a_group_of_sleeping_clusters_is_woken_a_mixed_one_falls_back() -> None:
    groups = copy.deepcopy(BASE["groups"])
    groups[0]["clusters"] = [cluster("a1", "stopped"), cluster("a2", "suspended")]
    decision = route(conf(groups=groups), RequestFacts(), {"e1": up()})
    assert (decision.group, decision.cluster_id, decision.wake) == ("adhoc", None, "a1")
    # One already starting is the one to wait for.
    decision = route(conf(groups=groups), RequestFacts(), {"a2": ClusterHealth(state=STARTING)})
    assert decision.wake == "a2"
    groups[0]["clusters"][1]["state"] = "running"
    decision = route(
        conf(groups=groups), RequestFacts(), {"a2": ClusterHealth(state=DOWN), "e1": up()}
    )
    assert decision.cluster_id == "e1"
    groups[0]["clusters"][1]["state"] = "stopped"
    decision = route(conf(groups=groups, wake={"enabled": False}), RequestFacts(), {"e1": up()})
    assert decision.cluster_id == "e1"
    assert decision.wake is None


def test_health_hysteresis_marks_down_after_n_failures_and_up_after_m_successes() -> None:
    t = Health(fail_threshold=3, success_threshold=2)
    fail, ok = Probe(ok=False, error="timeout"), Probe(ok=True, running=1, queued=2)
    h = observe(ClusterHealth(), ok, t)
    assert h.state == UP
    assert h.load == 3
    for _ in range(2):
        h = observe(h, fail, t)
        assert h.state == UP
    h = observe(h, fail, t)
    assert h.state == DOWN
    assert h.last_error == "timeout"
    h = observe(h, ok, t)
    assert h.state == DOWN
    h = observe(h, fail, t)  # a failure in between restarts the count
    h = observe(h, ok, t)
    assert h.state == DOWN
    h = observe(h, ok, t)
    assert h.state == UP
    # A success between failures keeps it up: no flapping on one bad probe.
    h = observe(observe(observe(h, fail, t), fail, t), ok, t)
    assert observe(observe(h, fail, t), fail, t).state == UP


def test_starting_is_distinct_from_down_and_rejoins_after_m_successes() -> None:
    t = Health(fail_threshold=3, success_threshold=2)
    h = observe(ClusterHealth(state=UP), Probe(ok=True, starting=True), t)
    assert h.state == STARTING
    h = observe(h, Probe(ok=True), t)
    assert h.state == STARTING
    assert observe(h, Probe(ok=True), t).state == UP
    assert observe(ClusterHealth(), Probe(ok=False), t).state == DOWN
    assert ClusterHealth().state == UNKNOWN


def test_a_starting_cluster_is_not_routed_to() -> None:
    decision = route(conf(), RequestFacts(), {"a1": ClusterHealth(state=STARTING), "a2": up(7)})
    assert decision.cluster_id == "a2"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"rules": [{"name": "r", "priority": 1, "group": "nope", "match": {}}]}, "rules[0].group"),
        (
            {"rules": [{"name": "r", "priority": 1, "group": "etl", "match": {"user": "("}}]},
            "rules[0].match.user",
        ),
        (
            {"rules": [{"name": "r", "priority": 1, "group": "etl", "match": {"usr": "x"}}]},
            "rules[0].match.usr",
        ),
        (
            {"groups": [{"name": "g", "clusters": []}], "rules": [], "default_group": "g"},
            "groups[0].clusters",
        ),
        ({"default_group": "missing"}, "default_group"),
        ({"health": {"fail_threshold": 0}}, "health.fail_threshold"),
    ],
)
def test_invalid_config_names_the_field(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        conf(**change)
    assert path in err.value.errors


def test_load_config_refuses_bad_json() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("{not json")
    assert "config" in err.value.errors
