"""An agent speaks for its own compute plane's resources only.

A status or usage report that names a cluster, metastore or cache that is not on the reporting
agent's compute plane has that entry *refused*: it is dropped
before anything is stored, counted in ``lakeplane_agent_refused_samples_total`` and listed
in the answer's ``refused``. The rest of the report is applied as usual, so one stray entry
(a bug, a copied config, a hostile agent) neither reaches another tenant's rows or bill nor
costs the plane its own status.

Which resources are on a plane is asked of the database by the related names of
``ComputePlane``'s reverse keys (``clusters``, ``metastores``, ``caches`` — the report's field
names), so this app imports none of the apps that own them. A resource never moves to another
plane and its id is never reused, so a positive answer is remembered for the life of the
process; only an id not seen before costs a query (one per kind, for all of a report's
unknown ids). A soft-deleted resource is still its plane's: its agent reports it until it is
gone, and its last minutes are billed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from django.db.models import Model
from prometheus_client import Counter

from computeplane_agent import contract
from controlplane.computeplanes.models import ComputePlane

STATUS_KINDS: Final = ("clusters", "metastores", "caches")

REFUSED_SAMPLES: Final = Counter(
    "lakeplane_agent_refused_samples",
    "Report entries refused because they name a resource not on the reporting agent's "
    "compute plane, by report (status, usage) and resource kind.",
    ["report", "kind"],
)


class PlaneMembership:
    """Resource id → compute plane id, as far as this process has seen (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plane_of: dict[str, str] = {}

    def foreign(self, plane_id: str, kind: str, ids: Iterable[str]) -> set[str]:
        """The ids of ``kind`` among ``ids`` that are not on ``plane_id``."""
        ids = set(ids)
        unknown = {i for i in ids if i not in self._plane_of}
        if unknown:
            model = ComputePlane._meta.get_field(kind).related_model
            assert isinstance(model, type), kind
            assert issubclass(model, Model), kind
            found = dict(
                model._base_manager.filter(id__in=unknown).values_list("id", "compute_plane_id")
            )
            with self._lock:
                self._plane_of.update(found)
        return {i for i in ids if self._plane_of.get(i) != plane_id}

    def clear(self) -> None:
        with self._lock:
            self._plane_of.clear()


membership = PlaneMembership()


@dataclass(frozen=True)
class Refused:
    """What a report had refused: the foreign ids and how many entries named them, by kind."""

    report: str
    ids: dict[str, list[str]]
    entries: dict[str, int]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def as_result(self) -> dict[str, object]:
        return {**self.ids, "entries": sum(self.entries.values())}

    def count(self) -> None:
        """Add to the metric, once the report is stored (never for a replay or a request that
        turns out unauthenticated)."""
        for kind, entries in self.entries.items():
            REFUSED_SAMPLES.labels(report=self.report, kind=kind).inc(entries)


NONE: Final = Refused("none", {}, {})


def confine_status(
    plane_id: str, report: contract.StatusReport
) -> tuple[contract.StatusReport, Refused]:
    """The report without the entries naming another plane's resources, and what was dropped."""
    kept: dict[str, list[object]] = {}
    ids: dict[str, list[str]] = {}
    entries: dict[str, int] = {}
    for kind in STATUS_KINDS:
        listed = getattr(report, kind)
        if not listed:
            continue
        foreign = membership.foreign(plane_id, kind, (entry.id for entry in listed))
        if not foreign:
            continue
        kept[kind] = [entry for entry in listed if entry.id not in foreign]
        ids[kind] = sorted(foreign)
        entries[kind] = len(listed) - len(kept[kind])
    if not entries:
        return report, NONE
    return report.model_copy(update=kept), Refused("status", ids, entries)


# The field of a usage sample that names each kind of resource (a gateway sample names none:
# it runs for the plane itself).
USAGE_SUBJECTS: Final = {
    "clusters": "cluster_id",
    "caches": "cache_id",
    "metastores": "metastore_id",
}


def confine_usage(
    plane_id: str, report: contract.UsageReport
) -> tuple[contract.UsageReport, Refused]:
    """The report without the samples of another plane's resources, and what was dropped."""
    ids: dict[str, list[str]] = {}
    entries: dict[str, int] = {}
    dropped: set[int] = set()
    for kind, field in USAGE_SUBJECTS.items():
        named = [(i, getattr(s, field)) for i, s in enumerate(report.samples) if getattr(s, field)]
        if not named:
            continue
        foreign = membership.foreign(plane_id, kind, (subject for _, subject in named))
        if not foreign:
            continue
        ids[kind] = sorted(foreign)
        hits = [i for i, subject in named if subject in foreign]
        entries[kind] = len(hits)
        dropped.update(hits)
    if not dropped:
        return report, NONE
    kept = [s for i, s in enumerate(report.samples) if i not in dropped]
    return report.model_copy(update={"samples": kept}), Refused("usage", ids, entries)
