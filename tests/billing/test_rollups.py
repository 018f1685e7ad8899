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


@pytest.mark.django_db
def test_every_node_role_is_billed_from_what_ran():
    from computeplane_agent.install import SYSTEM_INSTANCE_TYPE
    from controlplane.caching.models import Cache
    from controlplane.catalogs.models import Metastore
    from tests.factories import CacheFactory, MetastoreFactory

    plane = ComputePlaneFactory()
    org = plane.organization
    cluster = ClusterFactory(organization=org, compute_plane=plane)
    cache = CacheFactory(organization=org, compute_plane=plane, workers=3)
    metastore = MetastoreFactory(organization=org, compute_plane=plane, kind="managed")
    Cache.objects.update(created_at=at(-60))
    Metastore.objects.update(created_at=at(-60))
    agent = register(plane)
    event(cluster, at(0), {"m6i.xlarge": 1, "r6i.2xlarge": 2})
    report(
        agent,
        at(0),
        at(60),
        [
            {
                "cluster_id": cluster.id,
                "role": "coordinator",
                "instance_type": "m6i.xlarge",
                "nodes": 1,
            },
            {
                "cluster_id": cluster.id,
                "role": "worker",
                "instance_type": "r6i.2xlarge",
                "nodes": 2,
            },
            {"cache_id": cache.id, "role": "cache", "instance_type": "r6i.2xlarge", "nodes": 2},
            {
                "metastore_id": metastore.id,
                "role": "metastore",
                "instance_type": SYSTEM_INSTANCE_TYPE,
                "nodes": 2,
            },
            {"role": "gateway", "instance_type": SYSTEM_INSTANCE_TYPE, "nodes": 2},
        ],
    )
    rollups.rebuild(at(0), at(60))

    by_role = {
        (row["cluster_ref"], row["role"], row["purchase_option"]): row["s"]
        for row in UsageHour.objects.values("cluster_ref", "role", "purchase_option").annotate(
            s=Sum("node_seconds")
        )
    }
    assert by_role == {
        (cluster.id, "coordinator", "on_demand"): 3600,
        (cluster.id, "worker", "on_demand"): 2 * 3600,
        # What the agent saw ready (2), not the 3 configured.
        (cache.id, "cache", "on_demand"): 2 * 3600,
        (metastore.id, "metastore", "on_demand"): 2 * 3600,
        (plane.id, "gateway", "on_demand"): 2 * 3600,
    }
    assert UsageHour.objects.aggregate(s=Sum("estimated_seconds"))["s"] == 0


@pytest.mark.django_db
def test_a_cache_and_a_metastore_nobody_reported_are_estimated_at_their_size():
    from computeplane_agent.install import SYSTEM_INSTANCE_TYPE
    from controlplane.caching.models import Cache
    from controlplane.catalogs.models import Metastore
    from tests.factories import CacheFactory, MetastoreFactory

    plane = ComputePlaneFactory()
    org = plane.organization
    cache = CacheFactory(organization=org, compute_plane=plane, workers=3)
    managed = MetastoreFactory(organization=org, compute_plane=plane, kind="managed")
    MetastoreFactory(organization=org, compute_plane=plane, kind="hive")  # runs nowhere
    Cache.objects.filter(pk=cache.pk).update(created_at=at(-60), deleted_at=at(30))
    Metastore.objects.filter(created_at__gt=at(-60)).update(created_at=at(-60))

    rollups.rebuild(at(0), at(60))

    rows = {
        (r["cluster_ref"], r["role"], r["instance_type"]): (r["s"], r["e"])
        for r in UsageHour.objects.values("cluster_ref", "role", "instance_type").annotate(
            s=Sum("node_seconds"), e=Sum("estimated_seconds")
        )
    }
    assert rows == {
        (cache.id, "cache", "r6i.2xlarge"): (3 * 1800,) * 2,  # until it was deleted
        (managed.id, "metastore", SYSTEM_INSTANCE_TYPE): (2 * 3600,) * 2,
    }


@pytest.mark.django_db
def test_a_sample_for_a_role_its_resource_does_not_have_never_counts():
    from controlplane.agentapi.models import UsageRecord
    from tests.factories import CacheFactory

    plane = ComputePlaneFactory()
    cache = CacheFactory(organization=plane.organization, compute_plane=plane)
    cluster = ClusterFactory(organization=plane.organization, compute_plane=plane)
    agent = register(plane)
    worker = {"cluster_id": cluster.id, "role": "worker", "instance_type": "r6i.2xlarge"}
    report(agent, at(0), at(60), [{**worker, "nodes": 1}])
    # Rows the contract cannot produce (a cache's id with a worker's role), as a bug or an old
    # row might hold them: billing checks the role against the resource all the same.
    UsageRecord.objects.create(
        compute_plane=plane,
        resource_id=cache.id,
        role="worker",
        instance_type="r6i.2xlarge",
        nodes=40,
        seconds=3600,
        period_start=at(0),
        period_end=at(60),
    )
    rollups.rebuild(at(0), at(60))
    # The hour was covered by a report that named no cache sample: the cache ran nothing.
    assert dict(UsageHour.objects.values_list("cluster_ref").annotate(s=Sum("node_seconds"))) == {
        cluster.id: 3600
    }
