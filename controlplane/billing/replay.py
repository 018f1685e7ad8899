"""Replay a generated month of usage for an organization (``manage.py billing_replay_month``).

The replay writes what a real month leaves behind — cluster events and the agent's hourly usage
reports with the periods they covered, each sample naming its node role — for three clusters
and a cache on a compute plane named ``replay``, then rebuilds the facts and rollups from them
exactly as the beat task does. Nothing is written to the usage tables directly, so a replayed
statement exercises every rule in docs/billing.md:

* ``replay-dashboards``: always on, three ``m6i.xlarge`` (a coordinator and two workers),
  resized to four on the 15th at noon;
* ``replay-adhoc``: weekdays 08:00-19:00 local, a ``m6i.xlarge`` coordinator and two
  ``r6i.2xlarge`` workers, autoscaled to six from 12:00 to 15:00;
* ``replay-etl``: spot workers, every night 01:00-05:00 local, a ``m6i.large`` coordinator and
  eight ``r6i.4xlarge`` workers;
* ``replay-cache``: an Alluxio cache the clusters share, two ``r6i.xlarge`` caching workers all
  month (billed as the ``cache`` role);
* the agent is silent on the 10th from 13:00 to 16:00 local: those hours are billed from the
  clusters' last known state and flagged as estimated.

The plane and clusters are soft-deleted (status ``deleted``) so no reconciler ever acts on them;
re-running the replay replaces what an earlier run wrote for the same window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from controlplane.billing import rollups
from controlplane.billing.models import ReportedPeriod
from controlplane.billing.rollups import HOUR, floor_hour
from controlplane.billing.statements import Month, profile_of


@dataclass(frozen=True)
class _Shape:
    name: str
    coordinator: str
    worker: str
    spot: bool


DASHBOARDS = _Shape("replay-dashboards", "m6i.xlarge", "m6i.xlarge", False)
ADHOC = _Shape("replay-adhoc", "m6i.xlarge", "r6i.2xlarge", False)
ETL = _Shape("replay-etl", "m6i.large", "r6i.4xlarge", True)
SHAPES = (DASHBOARDS, ADHOC, ETL)
CACHE_NAME, CACHE_TYPE, CACHE_WORKERS = "replay-cache", "r6i.xlarge", 2


def _nodes(shape: _Shape, workers: int) -> dict[str, int]:
    if workers == 0:
        return {}
    if shape.coordinator == shape.worker:
        return {shape.worker: workers + 1}
    return {shape.coordinator: 1, shape.worker: workers}


def _workers(shape: _Shape, local: datetime) -> int:
    """How many workers ``shape`` runs during the local hour starting at ``local``."""
    hour = local.hour
    if shape is DASHBOARDS:
        return 3 if (local.day, hour) >= (15, 12) else 2
    if shape is ADHOC:
        if local.weekday() >= 5 or not 8 <= hour < 19:
            return 0
        return 6 if 12 <= hour < 15 else 2
    return 8 if 1 <= hour < 5 else 0


def _agent_silent(local: datetime) -> bool:
    return local.day == 10 and 13 <= local.hour < 16


def _record(plane: Any, at: datetime, resource: str, role: str, itype: str, nodes: int) -> Any:
    """One hour of one role's nodes, as the agent's usage report stores it."""
    from controlplane.agentapi.models import UsageRecord

    return UsageRecord(
        compute_plane=plane,
        resource_id=resource,
        role=role,
        instance_type=itype,
        nodes=nodes,
        seconds=3600,
        period_start=at,
        period_end=at + HOUR,
    )


def window(organization: Any, month: Month, now: datetime) -> tuple[datetime, datetime]:
    """The month in the organization's time zone, up to the current hour if it is this month."""
    zone = ZoneInfo(profile_of(organization).time_zone)
    start = datetime.combine(month.first, time(), tzinfo=zone).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(month.next.first, time(), tzinfo=zone).astimezone(ZoneInfo("UTC"))
    return start, min(end, floor_hour(now))


def replay_month(
    organization: Any, month: Month, *, now: datetime | None = None, days: int | None = None
) -> dict[str, Any]:
    """Write the month's events and reports (``days``: only the first few days), then rebuild."""
    from controlplane.agentapi.models import UsageRecord
    from controlplane.caching.models import Cache
    from controlplane.cloudaccounts.models import CloudAccount
    from controlplane.clusters.models import Cluster, ClusterEvent
    from controlplane.computeplanes.models import ComputePlane

    now = now or timezone.now()
    start, end = window(organization, month, now)
    if days is not None:
        end = min(end, start + timedelta(days=days))
    if end <= start:
        raise ValueError(f"{month} has not started yet in the organization's time zone")
    zone = ZoneInfo(profile_of(organization).time_zone)
    with transaction.atomic():
        account, _ = CloudAccount.objects.get_or_create(
            organization=organization,
            name="replay (generated usage)",
            defaults={"aws_account_id": "000000000000"},
        )
        plane = ComputePlane.objects.filter(
            organization=organization, name="replay", status="deleted"
        ).first() or ComputePlane.objects.create(
            organization=organization,
            cloud_account=account,
            name="replay",
            region="us-east-1",
            kubernetes_version="1.31",
            status="deleted",
            deleted_at=now,
        )
        clusters = {}
        for shape in SHAPES:
            cluster = Cluster.objects.filter(
                organization=organization, compute_plane=plane, name=shape.name
            ).first() or Cluster.objects.create(
                organization=organization,
                compute_plane=plane,
                name=shape.name,
                engine="trino",
                version="476",
                status="deleted",
                coordinator_instance_type=shape.coordinator,
                worker_instance_type=shape.worker,
                spot=shape.spot,
                workers_desired=2,
                workers_min=0,
                workers_max=10,
                deleted_at=now,
            )
            Cluster.objects.filter(pk=cluster.pk).update(deleted_at=max(now, end))
            clusters[shape] = cluster
        cache = Cache.objects.filter(
            organization=organization, compute_plane=plane, name=CACHE_NAME
        ).first() or Cache.objects.create(
            organization=organization,
            compute_plane=plane,
            name=CACHE_NAME,
            version="2.9.5",
            status="deleted",
            worker_instance_type=CACHE_TYPE,
            workers=CACHE_WORKERS,
            medium="ssd",
            size_gb_per_worker=200,
        )
        Cache.objects.filter(pk=cache.pk).update(created_at=start, deleted_at=max(now, end))
        ids = [c.pk for c in clusters.values()] + [cache.pk]
        ClusterEvent.objects.filter(cluster_id__in=ids, at__gte=start, at__lt=end).delete()
        UsageRecord.objects.filter(
            resource_id__in=ids, period_start__gte=start, period_start__lt=end
        ).delete()
        ReportedPeriod.objects.filter(
            compute_plane_ref=plane.pk, period_start__gte=start, period_start__lt=end
        ).delete()

        events, records, periods = [], [], []
        last: dict[_Shape, dict[str, int] | None] = dict.fromkeys(SHAPES)
        at = start
        while at < end:
            local = at.astimezone(zone)
            silent = _agent_silent(local)
            if not silent:
                periods.append(
                    ReportedPeriod(
                        compute_plane_ref=plane.pk, period_start=at, period_end=at + HOUR
                    )
                )
            for shape, cluster in clusters.items():
                nodes = _nodes(shape, _workers(shape, local))
                if nodes != last[shape]:
                    events.append(
                        ClusterEvent(
                            cluster=cluster,
                            organization=organization,
                            at=at,
                            status="running" if nodes else "stopped",
                            reason="replay",
                            nodes=nodes,
                            spot_nodes={shape.worker: nodes[shape.worker]}
                            if shape.spot and nodes
                            else {},
                        )
                    )
                    last[shape] = nodes
                if silent:
                    continue
                workers = _workers(shape, local)
                if workers:
                    records.append(
                        _record(plane, at, cluster.pk, "coordinator", shape.coordinator, 1)
                    )
                    records.append(_record(plane, at, cluster.pk, "worker", shape.worker, workers))
            if not silent:
                records.append(_record(plane, at, cache.pk, "cache", CACHE_TYPE, CACHE_WORKERS))
            at += HOUR
        ClusterEvent.objects.bulk_create(events, batch_size=2000)
        UsageRecord.objects.bulk_create(records, batch_size=2000)
        ReportedPeriod.objects.bulk_create(periods, batch_size=2000)
    counts = rollups.rebuild(start, end)
    return {
        "start": start,
        "end": end,
        "events": len(events),
        "reports": len(records),
        **counts,
    }
