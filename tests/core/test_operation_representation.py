"""The stored JSON of an operation (Operation.representation) is never stale.

The operations list copies ``representation`` instead of serializing (performance; see
controlplane/core/representation.py). These tests hold it to the generic serializer's
output after every engine transition, show that any other writer clears it (database
triggers), and that the list's bytes equal JSONRenderer's rendering of the generic path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from controlplane.core import representation, workflows
from controlplane.core.api.serializers import OperationSerializer
from controlplane.core.audit import Actor
from controlplane.core.models import Operation, OperationStep
from controlplane.core.roles import Role
from controlplane.core.workflows import Claim, claim_next_step, run_claimed_step
from controlplane.tenancy.models import Organization
from tests.core import sample_workflows  # noqa: F401  (registers the test workflows)
from tests.factories import OperationFactory

pytestmark = pytest.mark.django_db


def fresh_json(op_id: str) -> str:
    """What the generic (detail) serializer renders for the operation right now."""
    operation = Operation.objects.prefetch_related("steps").get(pk=op_id)
    return JSONRenderer().render(OperationSerializer(operation).data).decode()


def stored(op_id: str) -> str | None:
    return Operation.objects.values_list("representation", flat=True).get(pk=op_id)


def assert_current(op_id: str) -> None:
    assert stored(op_id) == fresh_json(op_id)


def test_every_engine_transition_stores_the_current_representation(org: Organization) -> None:
    op = workflows.start_operation(
        actor=Actor.system_actor("test"),
        organization=org,
        kind="test.scripted",
        target=org,
        params={"script": ["retry", "error", "permanent", "ok"]},
    )
    assert_current(op.id)
    transitions = 0
    for _ in range(30):
        claimed = claim_next_step(op.id)
        assert_current(op.id)
        if not isinstance(claimed, Claim):
            break
        outcome = run_claimed_step(claimed)
        assert_current(op.id)
        transitions += 1
        if outcome.done:
            break
    op.refresh_from_db()
    assert op.status == "failed"
    assert transitions >= 4  # prepare, retry, error, permanent
    assert json.loads(stored(op.id) or "")["error"]["code"] == "quota_exceeded"

    workflows.retry_operation(actor=Actor.system_actor("test"), operation=op)
    assert_current(op.id)
    assert json.loads(stored(op.id) or "")["status"] == "queued"
    while True:
        claimed = claim_next_step(op.id)
        assert_current(op.id)
        if not isinstance(claimed, Claim):
            break
        run_claimed_step(claimed)
        assert_current(op.id)
    assert json.loads(stored(op.id) or "")["status"] == "succeeded"


def test_a_worker_lost_takeover_stores_the_current_representation(org: Organization) -> None:
    op = workflows.start_operation(
        actor=Actor.system_actor("test"), organization=org, kind="test.two_steps", target=org
    )
    assert isinstance(claim_next_step(op.id), Claim)
    Operation.objects.filter(pk=op.pk).update(lease_until=timezone.now())  # the worker died
    assert_current(op.id)  # lease_until is not shown: the stored value stays
    assert isinstance(claim_next_step(op.id), Claim)
    assert_current(op.id)
    assert json.loads(stored(op.id) or "")["attempts"] == 2


def test_any_other_writer_clears_it_and_nothing_stale_is_written_back(
    org: Organization,
) -> None:
    op = OperationFactory(organization=org, steps=["a", "b"])
    assert stored(op.id) is None  # rows not made by the engine start without one

    def rebuild() -> None:
        representation.store(op)
        assert_current(op.id)

    rebuild()
    Operation.objects.filter(pk=op.pk).update(progress=50)
    assert stored(op.id) is None
    rebuild()
    OperationStep.objects.filter(operation=op, position=1).update(detail="waiting")
    assert stored(op.id) is None
    rebuild()
    OperationStep.objects.create(operation=op, position=2, name="c")
    assert stored(op.id) is None
    rebuild()
    OperationStep.objects.filter(operation=op, position=2).delete()
    assert stored(op.id) is None
    rebuild()
    # Columns the API does not show leave it alone.
    Operation.objects.filter(pk=op.pk).update(resources={"vpc": "vpc-1"}, lease_until=None)
    OperationStep.objects.filter(operation=op).update(errors=3)
    assert_current(op.id)

    # An instance loaded before a change, saved afterwards, must not restore its old value.
    old = Operation.objects.get(pk=op.pk)
    assert old.representation is not None
    OperationStep.objects.filter(operation=op, position=0).update(status="running")
    old.params = {"x": 1}
    old.save()
    assert stored(op.id) is None


def test_list_body_equals_the_generic_rendering_byte_for_byte(
    org: Organization, make_caller: Callable[..., Any]
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    first = OperationFactory(organization=org, steps=["plan", "apply"])
    OperationStep.objects.filter(operation=first, position=0).update(
        detail='quotes " and \\ backslash, ünïcödé, \u2028 line separator, \t tab',
        started_at=timezone.now(),
    )
    second = OperationFactory(organization=org, error_code="x", error_message="boom")
    representation.store(second)  # one stored, one rebuilt on read
    url = f"/api/v1/orgs/{org.slug}/operations?limit=1"

    def expected(ops: list[Operation], next_url: str | None, previous: str | None) -> bytes:
        data = [
            OperationSerializer(Operation.objects.prefetch_related("steps").get(pk=o.pk)).data
            for o in ops
        ]
        return JSONRenderer().render({"results": data, "next": next_url, "previous": previous})

    page = caller.client.get(url)
    assert page.status_code == 200
    body = page.json()
    assert page.content == expected([second], body["next"], None)
    assert body["next"] is not None
    page2 = caller.client.get(body["next"])
    assert page2.content == expected([first], None, page2.json()["previous"])
    assert stored(first.id) is not None  # rebuilt by the read and kept

    # A change by any writer shows in the next list, not the stored old one.
    OperationStep.objects.filter(operation=first, position=1).update(detail="changed")
    again = caller.client.get(body["next"]).json()
    assert again["results"][0]["steps"][1]["detail"] == "changed"

    # An indented answer decodes the stored parts and renders them as JSONRenderer would.
    indented = caller.client.get(url, HTTP_ACCEPT="application/json; indent=2")
    assert indented.status_code == 200
    assert indented.content == JSONRenderer().render(
        body, "application/json; indent=2", {"indent": 2}
    )
