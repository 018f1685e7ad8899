"""The compute plane screens in Chromium (frontend/e2e/compute-planes.e2e.mjs) against a plane the
emulator really built: its VPC is deleted behind Lakeplane's back, the periodic drift check finds
it, the console shows the finding and Repair, and the repair the browser starts is followed on
the page until the plane is ready again."""

from __future__ import annotations

import json
import os
import subprocess
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
from tests.e2e.test_console_browser import FRONTEND, PASSWORD, _require_toolchain

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCRIPT = FRONTEND / "e2e" / "compute-planes.e2e.mjs"
BROWSER_RUN_TIMEOUT_S = 240


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
    node = _require_toolchain()
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

    artifacts = Path(os.environ.get("LAKEPLANE_E2E_ARTIFACTS", tmp_path / "artifacts"))
    env = {
        **os.environ,
        "LAKEPLANE_BASE_URL": live_server.url,
        "LAKEPLANE_E2E_EMAIL": owner.user.email,
        "LAKEPLANE_E2E_PASSWORD": PASSWORD,
        "LAKEPLANE_E2E_ORG": owner.org.slug,
        "LAKEPLANE_E2E_PLANE": json.dumps(
            {"id": ready_plane.id, "name": ready_plane.name, "finding": finding}
        ),
        "LAKEPLANE_E2E_ARTIFACTS": str(artifacts),
    }
    stderr_file = tmp_path / "stderr.txt"
    lines: list[str] = []
    with (
        stderr_file.open("w") as stderr,
        subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=FRONTEND,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as browser,
    ):
        assert browser.stdout is not None
        try:
            for line in browser.stdout:
                lines.append(line)
                if line.startswith("REPAIR_STARTED "):
                    op_id = line.split()[1]
                    operation = Operation.objects.get(pk=op_id)
                    assert (operation.kind, operation.target_id) == (
                        "computeplane.repair",
                        ready_plane.id,
                    )
                    assert drive(op_id, sim_agent).operation.status == "succeeded"
            browser.wait(timeout=BROWSER_RUN_TIMEOUT_S)
        finally:
            if browser.poll() is None:
                browser.kill()
    output = f"--- stdout ---\n{''.join(lines)}\n--- stderr ---\n{stderr_file.read_text()}"
    assert browser.returncode == 0, f"browser run failed (exit {browser.returncode})\n{output}"
    assert "compute-planes e2e: all checks passed" in output, output
    ready_plane.refresh_from_db()
    assert (ready_plane.status, ready_plane.findings) == ("ready", [])
    for png in (
        "compute-plane-degraded.png",
        "compute-plane-repairing.png",
        "compute-plane-repaired.png",
    ):
        assert (artifacts / png).stat().st_size > 0
