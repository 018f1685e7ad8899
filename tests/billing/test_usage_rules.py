"""The usage rules (controlplane/billing/usage.py), on the pure function, with property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.billing.usage import ClusterShape, Event, Sample, compute_minutes

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SHAPE = ClusterShape("cl_a", "org_a", "cp_a", "m5.xlarge", "r5.2xlarge", spot=True)
SAME_TYPE = ClusterShape("cl_b", "org_a", "cp_a", "m5.xlarge", "m5.xlarge", spot=False)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def total(facts, role=None, estimated=False):
    index = 1 if estimated else 0
    return sum(v[index] for (key, _m), v in facts.items() if role in (None, key[5]))


def sample(report, itype, nodes, start, end, cluster="cl_a"):
    seconds = int((at(end) - at(start)).total_seconds())
    return Sample(report, cluster, itype, nodes, seconds, at(start), at(end))


def test_a_report_is_the_truth_for_its_period():
    samples = [sample("r1", "m5.xlarge", 1, 0, 10), sample("r1", "r5.2xlarge", 4, 0, 10)]
    facts = compute_minutes(
        SHAPE,
        [Event(at(0), {"m5.xlarge": 1, "r5.2xlarge": 9})],
        samples,
        [(at(0), at(10))],
        at(0),
        at(10),
    )
    assert total(facts, "coordinator") == 600
    assert total(facts, "worker") == 4 * 600  # what ran, not the 9 asked for
    assert total(facts, estimated=True) == 0
    keys = {key for key, _minute in facts}
    assert ("org_a", "cp_a", "cl_a", "r5.2xlarge", "spot", "worker") in keys
    assert ("org_a", "cp_a", "cl_a", "m5.xlarge", "on_demand", "coordinator") in keys
    assert len({m for _k, m in facts}) == 10  # one-minute resolution


def test_a_covered_period_without_samples_means_nothing_ran():
    facts = compute_minutes(
        SHAPE, [Event(at(0), {"r5.2xlarge": 3})], [], [(at(0), at(5))], at(0), at(5)
    )
    assert facts == {}


def test_a_gap_is_billed_at_the_last_known_state_and_flagged():
    events = [Event(at(0), {"m5.xlarge": 1, "r5.2xlarge": 2}), Event(at(20), {"r5.2xlarge": 0})]
    samples = [sample("r1", "m5.xlarge", 1, 0, 5), sample("r1", "r5.2xlarge", 2, 0, 5)]
    facts = compute_minutes(SHAPE, events, samples, [(at(0), at(5))], at(0), at(30))
    # 0-5 reported; 5-20 no report: the events' 1 + 2 nodes, estimated; 20-30 stopped.
    assert total(facts) == 3 * 5 * 60 + 3 * 15 * 60
    assert total(facts, estimated=True) == 3 * 15 * 60


def test_coordinator_and_workers_of_one_type_split_one_and_the_rest():
    samples = [
        sample("r1", "m5.xlarge", 1, 0, 1, "cl_b"),
        sample("r1", "m5.xlarge", 3, 0, 1, "cl_b"),
    ]
    facts = compute_minutes(SAME_TYPE, [], samples, [(at(0), at(1))], at(0), at(1))
    assert total(facts, "coordinator") == 60
    assert total(facts, "worker") == 180


def test_a_report_straddling_minutes_is_split_by_the_second():
    facts = compute_minutes(
        SHAPE, [], [sample("r1", "r5.2xlarge", 2, 0.5, 1.5)], [(at(0.5), at(1.5))], at(0), at(2)
    )
    assert sorted(v[0] for v in facts.values()) == [60, 60]


# --- properties ---------------------------------------------------------------------------------
levels = st.integers(min_value=0, max_value=6)
minutes = st.integers(min_value=0, max_value=90)


@st.composite
def histories(draw):
    """Random event sequences (create, resize, stop, start, delete) and reports with gaps."""
    events, t = [], 0
    for _ in range(draw(st.integers(1, 6))):
        t += draw(st.integers(0, 25))
        events.append(
            Event(at(t), {"m5.xlarge": draw(st.integers(0, 1)), "r5.2xlarge": draw(levels)})
        )
    reports, t = [], 0
    for index in range(draw(st.integers(0, 8))):
        t += draw(st.integers(0, 15))  # gaps between reports
        length = draw(st.integers(1, 15))
        reports.append(
            [
                sample(f"r{index}", "m5.xlarge", draw(st.integers(0, 1)), t, t + length),
                sample(f"r{index}", "r5.2xlarge", draw(levels), t, t + length),
            ]
        )
        t += length
    return events, reports


def _run(events, reports, end=120):
    samples = [s for report in reports for s in report]
    coverage = [(r[0].period_start, r[0].period_end) for r in reports]
    return compute_minutes(SHAPE, events, samples, coverage, at(0), at(end))


@settings(max_examples=300, deadline=None)
@given(histories())
def test_replaying_any_report_changes_nothing(history):
    events, reports = history
    replayed = [
        *reports,
        *(
            [
                [s.__class__(f"again-{s.report}", *list(vars(s).values())[1:]) for s in r]
                for r in reports[:2]
            ]
        ),
    ]
    assert _run(events, replayed) == _run(events, reports)


@settings(max_examples=300, deadline=None)
@given(histories())
def test_no_minute_is_counted_twice_or_beyond_what_could_run(history):
    events, reports = history
    most = max(
        [
            *(e.nodes["r5.2xlarge"] for e in events),
            *(s.nodes for r in reports for s in r if s.instance_type == "r5.2xlarge"),
            0,
        ]
    )
    for (key, _minute), (node_seconds, estimated) in _run(events, reports).items():
        bound = 60 if key[5] == "coordinator" else most * 60
        assert 0 <= estimated <= node_seconds <= bound


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(min_value=1, max_value=119))
def test_splitting_the_window_anywhere_gives_the_same_facts(history, cut):
    events, reports = history
    whole = _run(events, reports)
    samples = [s for report in reports for s in report]
    coverage = [(r[0].period_start, r[0].period_end) for r in reports]
    before = [e for e in events if e.at <= at(cut)]
    later = ([Event(at(cut), before[-1].nodes)] if before else []) + [
        e for e in events if e.at > at(cut)
    ]
    first = compute_minutes(SHAPE, events, samples, coverage, at(0), at(cut))
    second = compute_minutes(SHAPE, later, samples, coverage, at(cut), at(120))
    assert {**first, **second} == whole


def test_samples_naming_their_role_are_billed_as_that_role():
    # Same instance type for both: without roles, the split rule would guess one coordinator.
    samples = [
        Sample("r1", "cl_b", "m5.xlarge", 1, 600, at(0), at(10), role="coordinator"),
        Sample("r1", "cl_b", "m5.xlarge", 3, 600, at(0), at(10), role="worker"),
    ]
    facts = compute_minutes(SAME_TYPE, [], samples, [(at(0), at(10))], at(0), at(10))
    assert total(facts, "coordinator") == 600
    assert total(facts, "worker") == 3 * 600


def test_a_cache_metastore_or_gateway_is_one_role_on_demand():
    for role in ("cache", "metastore", "gateway"):
        shape = ClusterShape("cache_a", "org_a", "cp_a", role=role)
        facts = compute_minutes(
            shape,
            [Event(at(0), {"r5.2xlarge": 4})],  # its configured size, for the gap
            [Sample("r1", "cache_a", "r5.2xlarge", 2, 300, at(0), at(5), role=role)],
            [(at(0), at(5))],
            at(0),
            at(10),
        )
        assert {key[4:] for key, _m in facts} == {("on_demand", role)}
        assert total(facts) == 2 * 300 + 4 * 300
        assert total(facts, estimated=True) == 4 * 300  # the unreported half, flagged
