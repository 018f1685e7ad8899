"""The sweeper removes what a vanished compute plane left behind, and nothing else."""

from __future__ import annotations

import pytest

from controlplane.computeplanes import sweeper
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.models import AuditEvent
from tests.computeplanes.test_compute_planes import _body, _url, tagged_resources

pytestmark = pytest.mark.django_db(transaction=True)


def test_sweeper_removes_orphans_and_spares_live_planes(owner, verified_account, sandbox):
    orphan = owner.client.post(_url(owner), _body(verified_account), format="json").json()
    keeper = owner.client.post(
        _url(owner),
        _body(verified_account, name="keeper", vpc_cidr="10.43.0.0/16"),
        format="json",
    ).json()
    assert ComputePlane.objects.get(pk=orphan["id"]).status == "ready"
    assert ComputePlane.objects.get(pk=keeper["id"]).status == "ready"
    kept_before = tagged_resources(sandbox, keeper["id"])

    # The owner vanishes without a teardown (say, its row was deleted by hand).
    ComputePlane.objects.filter(pk=orphan["id"]).delete()
    assert tagged_resources(sandbox, orphan["id"])["vpcs"]

    # Deletes that must wait for AWS (a NAT gateway deleting) finish on a later run.
    reports = [sweeper.sweep()]
    while reports[-1].pending and len(reports) < 5:
        reports.append(sweeper.sweep())

    assert not reports[-1].pending, reports
    assert orphan["id"] in reports[0].removed, reports
    assert all(keeper["id"] not in r.removed for r in reports)
    leftovers = {k: v for k, v in tagged_resources(sandbox, orphan["id"]).items() if v}
    assert leftovers == {}
    assert tagged_resources(sandbox, keeper["id"]) == kept_before
    events = AuditEvent.objects.filter(action="sweeper.removed_orphans")
    assert {e.target_id for e in events} == {orphan["id"]}
    assert {e.organization_id for e in events} == {owner.org.pk}

    # Nothing left to do: a second sweep removes nothing.
    assert sweeper.sweep().removed == {}
