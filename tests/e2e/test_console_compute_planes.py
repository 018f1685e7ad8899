"""The compute plane screens in Chromium (frontend/e2e/compute-planes.e2e.mjs) against a plane the
emulator really built: its VPC is deleted behind Lakeplane's back, the periodic drift check finds
it, the console shows the finding and Repair, and the repair the browser starts is followed on
the page until the plane is ready again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from controlplane.computeplanes.models import ComputePlane
from controlplane.core.models import Operation
from tests.clusters.conftest import (  # noqa: F401  fixtures
    SimulatedAgent,
    drive,
    ready_plane,
    sim_agent,
    verified_account,
)
from tests.drift.conftest import delete_vpc, drift_checks, eager_celery_tasks  # noqa: F401
from tests.e2e.browser import run_browser_script
from tests.e2e.test_console_browser import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_degraded_plane_shows_findings_and_repair_runs_from_the_console(
    live_server: LiveServer,
    tmp_path: Path,
    settings,
    owner,
    sandbox,
    ready_plane: ComputePlane,  # noqa: F811
    sim_agent: SimulatedAgent,  # noqa: F811
    drift_checks,  # noqa: F811
) -> None:
    owner.user.set_password(PASSWORD)
    owner.user.save()

    vpc_id = ready_plane.resources["vpc_id"]
    delete_vpc(sandbox, vpc_id)
    drift_checks()
    ready_plane.refresh_from_db()
    assert ready_plane.status == "degraded"
    finding = f"The VPC {vpc_id} no longer exists."
    assert finding in [f["detail"] for f in ready_plane.findings]

    # The browser's repair must only write its operation: this test delivers the steps itself
    # (drive), as the drift tests do, because eager Celery would loop on the agent wait inside
    # the request.
    from controlplane.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False

    def deliver(words: list[str]) -> str:
        assert words[0] == "drive"
        operation = Operation.objects.get(pk=words[1])
        assert (operation.kind, operation.target_id) == ("computeplane.repair", ready_plane.id)
        return drive(operation.id, sim_agent).operation.status

    artifacts = run_browser_script(
        "compute-planes.e2e.mjs",
        live_server,
        tmp_path,
        {
            "LAKEPLANE_E2E_EMAIL": owner.user.email,
            "LAKEPLANE_E2E_PASSWORD": PASSWORD,
            "LAKEPLANE_E2E_ORG": owner.org.slug,
            "LAKEPLANE_E2E_PLANE": json.dumps(
                {"id": ready_plane.id, "name": ready_plane.name, "finding": finding}
            ),
        },
        deliver,
    )
    ready_plane.refresh_from_db()
    assert (ready_plane.status, ready_plane.findings) == ("ready", [])
    for png in (
        "compute-plane-degraded.png",
        "compute-plane-repairing.png",
        "compute-plane-repaired.png",
    ):
        assert (artifacts / png).stat().st_size > 0
