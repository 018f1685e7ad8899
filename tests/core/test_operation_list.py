"""The operations list renders each operation exactly as the single-operation endpoint does.

The list goes through OperationListSerializer (one query for a page's steps, rendered by
hand for speed); the detail endpoint through the generic nested serializers. A field added
to one and not the other, or formatted differently, fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.core.models import OperationStatus, OperationStep, StepStatus
from controlplane.core.roles import Role
from tests.factories import OperationFactory


@pytest.mark.django_db
def test_list_items_equal_the_detail_representation(
    org: Any, make_caller: Callable[..., Any]
) -> None:
    caller = make_caller(org, Role.VIEWER, via="token")
    started = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    OperationFactory(organization=org, steps=[])  # no steps at all
    failed = OperationFactory(
        organization=org,
        status=OperationStatus.FAILED,
        progress=40,
        attempts=3,
        error_code="aws-access-denied",
        error_message="The role cannot ec2:CreateVpc.",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        steps=["plan", "ensure_vpc", "ensure_eks"],
    )
    OperationStep.objects.filter(operation=failed, position=0).update(
        status=StepStatus.SUCCEEDED,
        attempts=1,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        detail="3 actions",
    )
    OperationStep.objects.filter(operation=failed, position=1).update(
        status=StepStatus.FAILED, attempts=2, started_at=started, detail="AccessDenied"
    )
    OperationFactory(organization=org, status=OperationStatus.RUNNING, started_at=started)
    OperationFactory()  # another org's: must not appear

    listed = caller.client.get(f"/api/v1/orgs/{org.slug}/operations?limit=200")
    assert listed.status_code == 200
    results = listed.json()["results"]
    assert len(results) == 3
    for item in results:
        detail = caller.client.get(f"/api/v1/orgs/{org.slug}/operations/{item['id']}")
        assert detail.status_code == 200
        assert item == detail.json()

    by_id = {item["id"]: item for item in results}
    assert [s["name"] for s in by_id[failed.id]["steps"]] == ["plan", "ensure_vpc", "ensure_eks"]
    assert by_id[failed.id]["error"] == {
        "code": "aws-access-denied",
        "message": "The role cannot ec2:CreateVpc.",
    }
    assert by_id[failed.id]["steps"][0]["started_at"] == "2026-03-01T12:00:00.123456Z"
    assert by_id[failed.id]["steps"][2]["started_at"] is None
