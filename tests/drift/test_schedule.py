"""The ``check-drift`` schedule: every resource once per interval, spread over it, never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from controlplane.computeplanes import drift
from controlplane.computeplanes.models import ComputePlane
from tests.factories import ComputePlaneFactory

pytestmark = pytest.mark.django_db
INTERVAL = 600.0


def test_checks_are_spread_over_the_interval_and_sent_once(settings):
    settings.LAKEPLANE_DRIFT_INTERVAL_SECONDS = INTERVAL
    planes = [
        ComputePlaneFactory(cloud_account__status="verified", cloud_account__role_arn="")
        for _ in range(40)
    ]
    ComputePlaneFactory(status="provisioning")  # not checked: still being built
    now = timezone.now()
    sent: list[tuple[str, str]] = []

    def send(kind: str, resource_id: str) -> None:
        sent.append((kind, resource_id))

    # First sight: each resource gets a phase inside one interval, nothing is sent yet.
    assert drift.dispatch(now=now, send=send) == drift.Dispatched([], [])
    phases = sorted(
        (p.next_check_at - now).total_seconds()
        for p in ComputePlane.objects.filter(pk__in=[p.pk for p in planes])
    )
    assert phases[0] >= 0
    assert phases[-1] < INTERVAL
    # Spread: no quarter of the interval holds more than half of the planes.
    quarters = [
        sum(INTERVAL * q / 4 <= s < INTERVAL * (q + 1) / 4 for s in phases) for q in range(4)
    ]
    assert max(quarters) <= 20, quarters

    half = drift.dispatch(now=now + timedelta(seconds=INTERVAL / 2), send=send)
    assert 0 < len(half.planes) < 40
    assert drift.dispatch(now=now + timedelta(seconds=INTERVAL / 2), send=send).planes == []
    rest = drift.dispatch(now=now + timedelta(seconds=INTERVAL), send=send)
    assert sorted(half.planes + rest.planes) == sorted(p.pk for p in planes)
    assert len(half.accounts + rest.accounts) == 40
    assert len(sent) == 80
    assert len(set(sent)) == 80
    # Each keeps its phase: due again exactly one interval after its first check.
    again = drift.dispatch(now=now + timedelta(seconds=INTERVAL * 1.5), send=send)
    assert sorted(again.planes) == sorted(half.planes)


def test_a_busy_plane_is_not_judged(settings, owner):
    from controlplane.core import workflows
    from controlplane.core.audit import Actor

    plane = ComputePlaneFactory(organization=owner.org, cloud_account__status="verified")
    operation = workflows.start_operation(
        actor=Actor(user=owner.user),
        organization=owner.org,
        kind="computeplane.update",
        target=plane,
    )
    ComputePlane.objects.filter(pk=plane.pk).update(operation=operation)
    assert drift.check_compute_plane(plane.pk) is None
    plane.refresh_from_db()
    assert (plane.status, plane.last_checked_at) == ("ready", None)
