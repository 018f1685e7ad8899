"""Facts and rollups from the database: through the agent API and cluster events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.billing import rollups
from controlplane.billing.models import ReportedPeriod, UsageDay, UsageHour, UsageMinute
from tests.agentapi.conftest import register
from tests.billing.conftest import event, report
from tests.factories import ClusterFactory, ComputePlaneFactory

T0 = datetime(2026, 11, 2, 22, 0, tzinfo=UTC)  # two hours before a UTC day ends


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sums() -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        model.objects.aggregate(s=Sum("node_seconds"))["s"] or 0
        for model in (UsageMinute, UsageHour, UsageDay)
    )


@pytest.mark.django_db
def test_a_cluster_hour_from_reports_and_events():
    plane = ComputePlaneFactory()
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    agent = register(plane)
    event(cluster, at(0), {"m6i.xlarge": 1, "r6i.2xlarge": 2})
    for minute in range(0, 30, 5):  # the agent reports every 5 minutes for half an hour
        report(
            agent,
            at(minute),
            at(minute + 5),
            [(cluster.id, "m6i.xlarge", 1), (cluster.id, "r6i.2xlarge", 2)],
        )
    assert ReportedPeriod.objects.count() == 6

    counts = rollups.rebuild(at(0), at(60))

    assert counts["minutes"] == 60 * 2  # two series, one row a minute
    assert sums() == (3 * 3600,) * 3  # 1 + 2 nodes the whole hour
    estimated = UsageHour.objects.aggregate(s=Sum("estimated_seconds"))["s"]
    assert estimated == 3 * 30 * 60  # the second half hour had no report: flagged
    assert set(UsageHour.objects.values_list("role", flat=True)) == {"coordinator", "worker"}


@pytest.mark.django_db
def test_a_foreign_planes_samples_never_count():
    plane, other = ComputePlaneFactory(), ComputePlaneFactory()
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    intruder = register(other)
    report(intruder, at(0), at(10), [(cluster.id, "r6i.2xlarge", 50)])
    rollups.rebuild(at(0), at(60))
    assert sums() == (0, 0, 0)


@pytest.mark.django_db
def test_rebuilding_is_idempotent_and_a_replay_changes_nothing():
    plane = ComputePlaneFactory()
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    agent = register(plane)
    event(cluster, at(0), {"m6i.xlarge": 1, "r6i.2xlarge": 4})
    rid = report(agent, at(0), at(20), [(cluster.id, "r6i.2xlarge", 3)])
    rollups.rebuild(at(0), at(180))
    first = sums()
    report(agent, at(0), at(20), [(cluster.id, "r6i.2xlarge", 3)], report_id=rid)  # replay
    report(agent, at(0), at(20), [(cluster.id, "r6i.2xlarge", 3)])  # re-sent under a new id
    rollups.rebuild(at(0), at(180))
    rollups.rebuild(at(60), at(120))  # any past window, again
    assert sums() == first


@pytest.mark.django_db
def test_days_follow_the_organizations_time_zone():
    from controlplane.billing.models import BillingProfile

    plane = ComputePlaneFactory()
    BillingProfile.objects.create(organization=plane.organization, time_zone="Asia/Tokyo")
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    event(cluster, at(0), {"r6i.2xlarge": 1})
    event(cluster, at(240), {"r6i.2xlarge": 0}, status="stopped")
    rollups.rebuild(at(0), at(300))
    # 22:00-02:00 UTC is 07:00-11:00 on Nov 3 in Tokyo: one local day, four node-hours.
    days = list(UsageDay.objects.values_list("day", "node_seconds"))
    assert [(str(d), s) for d, s in days] == [("2026-11-03", 4 * 3600)]


@pytest.mark.django_db
def test_incremental_pass_picks_up_a_late_report_and_prunes(settings):
    settings.LAKEPLANE_BILLING_REBUILD_TRAILING_MINUTES = 30
    settings.LAKEPLANE_BILLING_RAW_RETENTION_DAYS = 2
    plane = ComputePlaneFactory()
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    agent = register(plane)
    event(cluster, at(0), {"r6i.2xlarge": 0})
    rollups.incremental(now=at(300))
    assert sums() == (0, 0, 0)
    report(agent, at(10), at(20), [(cluster.id, "r6i.2xlarge", 2)])  # arrives hours late
    rollups.incremental(now=at(310))
    assert sums() == (2 * 600,) * 3
    assert rollups.prune(now=at(60 * 24 * 3)) > 0
    assert UsageMinute.objects.count() == 0
    assert UsageHour.objects.count() > 0  # rollups outlive raw retention


CHANGES = st.lists(
    st.tuples(
        st.integers(0, 170),  # minute of the change
        st.sampled_from(["resize", "stop", "start", "delete", "report", "replay", "gap"]),
        st.integers(0, 5),  # nodes
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=CHANGES)
@pytest.mark.django_db
def test_minutes_hours_and_days_always_agree(changes):
    with transaction.atomic():
        plane = ComputePlaneFactory()
        cluster = ClusterFactory(organization=plane.organization, compute_plane=plane, spot=True)
        agent = register(plane)
        last = None
        for minute, kind, nodes in sorted(changes):
            if kind in ("resize", "start"):
                event(cluster, at(minute), {"m6i.xlarge": 1, "r6i.2xlarge": nodes})
            elif kind in ("stop", "delete"):
                event(cluster, at(minute), {}, status="stopped")
            elif kind == "report":
                last = report(
                    agent,
                    at(minute),
                    at(minute + 7),
                    [(cluster.id, "m6i.xlarge", 1), (cluster.id, "r6i.2xlarge", nodes)],
                )
            elif kind == "replay" and last is not None:
                report(agent, at(minute), at(minute + 7), [], report_id=last)
        rollups.rebuild(at(0), at(180))
        minutes, hours, days = sums()
        assert minutes == hours == days
        for row in UsageMinute.objects.all():
            assert row.estimated_seconds <= row.node_seconds <= 60 * 5
        again = sums()
        rollups.rebuild(at(0), at(180))
        assert sums() == again
        transaction.set_rollback(True)
