"""Usage facts: node-seconds per series per minute, computed from what the agent reported and,
where it reported nothing, from the last state the control plane knows.

The rules, in one place (docs/billing.md repeats them for customers):

* **Agent reports are the truth for the periods they cover.** A usage report says, for a period,
  how many ready nodes of each instance type each cluster had. Within a covered period a cluster
  the report does not mention ran nothing.
* **Overlap counts once.** Two reports covering the same instant (an agent that restarted and
  re-reported, a replay) do not add up: at every instant the level is the *highest* level any
  report gives, never the sum. Replaying a report therefore changes nothing.
* **A gap is bounded by the last known state and flagged.** Where no report covers an instant
  (agent outage, before the agent first reported), the level is what the cluster's latest event
  at that instant asked EKS for, and the seconds are counted as ``estimated`` — billed, never
  silently as zero and never as more than the cluster was sized for, and shown as estimated.
* **Roles.** Each sample names its role: the coordinator (one node, always on-demand) and the
  workers of a cluster (spot when the cluster runs on spot), the caching workers of a cache on
  its own node group, and the replicas of a managed metastore and of the gateway on the plane's
  system nodes (counted per replica against the system instance type). A sample of the first
  contract names no role: the coordinator is one node of the coordinator's instance type, the
  rest of that type and every node of the workers' type are workers. Where nothing was reported,
  a cache is estimated at its configured workers and a managed metastore at its replicas, over
  the resource's life.

:func:`compute_minutes` is pure (inputs in, facts out) so that the rules are tested directly,
with property tests over random event and report sequences; :func:`rebuild_minutes` feeds it
from the database for a window and replaces that window's facts.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery

MINUTE = timedelta(minutes=1)


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def ceil_minute(at: datetime) -> datetime:
    floored = floor_minute(at)
    return floored if floored == at else floored + MINUTE


# --- the pure part ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterShape:
    """What a usage series is for: a cluster, or (``role`` set) a resource all of whose nodes
    have that one role — a cache, a managed metastore, a plane's gateway."""

    id: str
    organization_id: str
    compute_plane_id: str
    coordinator_type: str = ""
    worker_type: str = ""
    spot: bool = False
    role: str | None = None


@dataclass(frozen=True)
class Event:
    at: datetime
    nodes: dict[str, int]  # instance type -> nodes asked of EKS from ``at`` on


@dataclass(frozen=True)
class Sample:
    report: str  # samples of one report add up; different reports overlap
    cluster_id: str
    instance_type: str
    nodes: int
    seconds: int
    period_start: datetime
    period_end: datetime
    role: str | None = None  # None: a first-contract cluster sample, split by instance type


SeriesKey = tuple[str, str, str, str, str, str]  # org, plane, cluster, type, purchase, role


@dataclass
class Fact:
    node_seconds: float = 0.0
    estimated_seconds: float = 0.0


@dataclass
class _Segment:
    start: datetime
    end: datetime
    covered: bool = False
    # (instance type, role or None) -> level from reports
    agent: dict[tuple[str, str | None], float] = field(default_factory=dict)


def compute_minutes(
    cluster: ClusterShape,
    events: Sequence[Event],
    samples: Iterable[Sample],
    coverage: Iterable[tuple[datetime, datetime]],
    start: datetime,
    end: datetime,
) -> dict[tuple[SeriesKey, datetime], tuple[int, int]]:
    """Node-seconds (total, estimated) per series and minute of ``[start, end)`` for one cluster.

    ``events`` are the cluster's events in time order, including the last one before ``start``;
    ``coverage`` the periods the cluster's compute plane reported usage for.
    """
    samples = [s for s in samples if s.period_end > start and s.period_start < end]
    periods = [
        (max(a, start), min(b, end)) for a, b in coverage if b > start and a < end and b > a
    ] + [(max(s.period_start, start), min(s.period_end, end)) for s in samples]

    cuts = {start, end}
    for a, b in periods:
        cuts.update((a, b))
    cuts.update(e.at for e in events if start < e.at < end)
    minute = ceil_minute(start)
    while minute < end:
        cuts.add(minute)
        minute += MINUTE
    points = sorted(cuts)
    segments = [_Segment(a, b) for a, b in itertools.pairwise(points) if b > a]

    # Coverage: a segment lies inside a covered period or outside all of them (cuts at edges).
    for seg in segments:
        seg.covered = any(a <= seg.start and seg.end <= b for a, b in periods)

    # Agent levels: per report, the nodes of each type (its samples add up); across reports,
    # the highest level at each instant.
    per_report: dict[tuple[str, str, str | None], list[Sample]] = defaultdict(list)
    for s in samples:
        per_report[(s.report, s.instance_type, s.role)].append(s)
    starts = [seg.start for seg in segments]
    for (_report, itype, role), group in per_report.items():
        by_segment: dict[int, float] = defaultdict(float)
        for s in group:
            span = (s.period_end - s.period_start).total_seconds()
            rate = s.nodes * (min(s.seconds, span) / span if span > 0 else 0.0)
            first = bisect_left(starts, max(s.period_start, start))
            for index in range(first, len(segments)):
                if segments[index].end > s.period_end:
                    break
                by_segment[index] += rate
        for index, level in by_segment.items():
            if level > segments[index].agent.get((itype, role), 0.0):
                segments[index].agent[(itype, role)] = level

    facts: dict[tuple[SeriesKey, datetime], Fact] = defaultdict(Fact)
    event_index = 0
    current: dict[str, int] = {}
    ordered = list(events)
    for seg in segments:
        while event_index < len(ordered) and ordered[event_index].at <= seg.start:
            current = ordered[event_index].nodes
            event_index += 1
        seconds = (seg.end - seg.start).total_seconds()
        bucket = floor_minute(seg.start)
        if seg.covered:
            levels, estimated = dict(seg.agent), False
        else:
            levels = {(k, None): float(v) for k, v in current.items() if v > 0}
            estimated = True
        for (itype, role), level in levels.items():
            for key, share in _split(cluster, itype, level, role):
                fact = facts[(key, bucket)]
                fact.node_seconds += share * seconds
                if estimated:
                    fact.estimated_seconds += share * seconds
    return {
        key: (round(f.node_seconds), round(f.estimated_seconds))
        for key, f in facts.items()
        if round(f.node_seconds) > 0
    }


def _split(
    cluster: ClusterShape, itype: str, level: float, role: str | None = None
) -> list[tuple[SeriesKey, float]]:
    base = (cluster.organization_id, cluster.compute_plane_id, cluster.id, itype)
    worker_option = "spot" if cluster.spot else "on_demand"
    role = role or cluster.role
    if role == "worker":
        return [((*base, worker_option, "worker"), level)]
    if role is not None:  # the coordinator, a cache, a metastore, the gateway: on-demand
        return [((*base, "on_demand", role), level)]
    parts: list[tuple[SeriesKey, float]] = []
    if itype == cluster.coordinator_type:
        coordinator = level if itype != cluster.worker_type else min(level, 1.0)
        parts.append(((*base, "on_demand", "coordinator"), coordinator))
        level -= coordinator
    if level > 0:
        parts.append(((*base, worker_option, "worker"), level))
    return parts


# --- the database part ------------------------------------------------------------------------
def _lifetime_events(
    created: datetime, deleted: datetime | None, nodes: dict[str, int], start: datetime
) -> list[Event]:
    """A resource without events of its own: its configured size over its life, as events."""
    events = [Event(max(created, start), nodes)]
    if deleted is not None:
        events.append(Event(max(deleted, start), {}))
    return events


def _subjects(start: datetime, end: datetime) -> list[tuple[ClusterShape, list[Event]]]:
    """Every resource usage may be billed for in ``[start, end)``, with its fallback events:
    clusters (their events), caches and managed metastores (their configured size over their
    life) and, for samples only, each plane's gateway."""
    from computeplane_agent.contract import MetastoreSpec
    from computeplane_agent.install import SYSTEM_INSTANCE_TYPE
    from controlplane.caching.models import Cache
    from controlplane.catalogs.models import Metastore, MetastoreKind
    from controlplane.clusters.models import Cluster, ClusterEvent
    from controlplane.computeplanes.models import ComputePlane

    alive = Q(deleted_at__isnull=True) | Q(deleted_at__gte=start)
    prior = ClusterEvent.objects.filter(cluster=OuterRef("pk"), at__lte=start).order_by(
        "-at", "-id"
    )
    window_events: dict[str, list[Event]] = defaultdict(list)
    for cluster_id, at, nodes in (
        ClusterEvent.objects.filter(at__gt=start, at__lt=end)
        .order_by("at", "id")
        .values_list("cluster_id", "at", "nodes")
    ):
        window_events[cluster_id].append(Event(at, dict(nodes)))
    subjects: list[tuple[ClusterShape, list[Event]]] = []
    for c in (
        Cluster.objects.filter(alive)
        .annotate(prior_nodes=Subquery(prior.values("nodes")[:1]))
        .values(
            "id",
            "organization_id",
            "compute_plane_id",
            "coordinator_instance_type",
            "worker_instance_type",
            "spot",
            "prior_nodes",
        )
    ):
        events = window_events.get(c["id"], [])
        if c["prior_nodes"] is not None:
            events = [Event(start, dict(c["prior_nodes"])), *events]
        shape = ClusterShape(
            id=c["id"],
            organization_id=c["organization_id"],
            compute_plane_id=c["compute_plane_id"],
            coordinator_type=c["coordinator_instance_type"],
            worker_type=c["worker_instance_type"],
            spot=c["spot"],
        )
        subjects.append((shape, events))
    for cache in Cache.objects.filter(alive, created_at__lt=end).values(
        "id",
        "organization_id",
        "compute_plane_id",
        "worker_instance_type",
        "workers",
        "created_at",
        "deleted_at",
    ):
        shape = ClusterShape(
            cache["id"], cache["organization_id"], cache["compute_plane_id"], role="cache"
        )
        nodes = {cache["worker_instance_type"]: cache["workers"]}
        subjects.append(
            (shape, _lifetime_events(cache["created_at"], cache["deleted_at"], nodes, start))
        )
    replicas = MetastoreSpec.model_fields["replicas"].default
    for ms in Metastore.objects.filter(
        alive, kind=MetastoreKind.MANAGED, created_at__lt=end
    ).values("id", "organization_id", "compute_plane_id", "created_at", "deleted_at"):
        shape = ClusterShape(
            ms["id"], ms["organization_id"], ms["compute_plane_id"], role="metastore"
        )
        nodes = {SYSTEM_INSTANCE_TYPE: replicas}
        subjects.append((shape, _lifetime_events(ms["created_at"], ms["deleted_at"], nodes, start)))
    for plane_id, org_id in ComputePlane.objects.filter(alive).values_list("id", "organization_id"):
        subjects.append((ClusterShape(plane_id, org_id, plane_id, role="gateway"), []))
    return subjects


def rebuild_minutes(start: datetime, end: datetime) -> int:
    """Replace the usage facts of ``[start, end)`` (minute-aligned) with ones computed afresh
    from the sources; returns the number of fact rows written. Re-runnable for any window."""
    from controlplane.agentapi.models import UsageRecord
    from controlplane.billing.models import ReportedPeriod, UsageMinute

    assert start == floor_minute(start), "minute-aligned windows"
    assert end == floor_minute(end), "minute-aligned windows"
    subjects = _subjects(start, end)
    # A resource's samples, by role: the gateway's are keyed by its plane.
    by_subject = {(shape.id, shape.role == "gateway"): shape for shape, _ in subjects}
    samples_by_subject: dict[tuple[str, bool], list[Sample]] = defaultdict(list)
    for row in UsageRecord.objects.filter(period_end__gt=start, period_start__lt=end).values(
        "compute_plane_id",
        "report_id",
        "resource_id",
        "role",
        "instance_type",
        "nodes",
        "seconds",
        "period_start",
        "period_end",
    ):
        key = (row["resource_id"], row["role"] == "gateway")
        shape = by_subject.get(key)
        # A sample counts only from its resource's own plane (ingestion refuses the rest), and
        # only for a role that resource has.
        if shape is None or shape.compute_plane_id != row["compute_plane_id"]:
            continue
        if not _role_fits(shape, row["role"] or None):
            continue
        samples_by_subject[key].append(
            Sample(
                report=str(row["report_id"] or f"{row['period_start']}-{row['period_end']}"),
                cluster_id=row["resource_id"],
                instance_type=row["instance_type"],
                nodes=row["nodes"],
                seconds=row["seconds"],
                period_start=row["period_start"],
                period_end=row["period_end"],
                role=row["role"] or None,
            )
        )
    coverage: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for plane, a, b in ReportedPeriod.objects.filter(
        period_end__gt=start, period_start__lt=end
    ).values_list("compute_plane_ref", "period_start", "period_end"):
        coverage[plane].append((a, b))

    rows: list[UsageMinute] = []
    for shape, events in subjects:
        samples = samples_by_subject.get((shape.id, shape.role == "gateway"), [])
        if not events and not samples:
            continue
        for (series, minute), (total, estimated) in compute_minutes(
            shape, events, samples, coverage.get(shape.compute_plane_id, []), start, end
        ).items():
            org, plane, resource_id, itype, option, role = series
            rows.append(
                UsageMinute(
                    organization_ref=org,
                    compute_plane_ref=plane,
                    cluster_ref=resource_id,
                    instance_type=itype,
                    purchase_option=option,
                    role=role,
                    minute=minute,
                    node_seconds=total,
                    estimated_seconds=estimated,
                )
            )
    with transaction.atomic():
        UsageMinute.objects.filter(minute__gte=start, minute__lt=end).delete()
        UsageMinute.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _role_fits(shape: ClusterShape, role: str | None) -> bool:
    if shape.role is not None:
        return role == shape.role
    return role in (None, "coordinator", "worker")
