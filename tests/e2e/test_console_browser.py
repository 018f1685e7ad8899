"""The console in a real browser: Debian's Chromium, driven by frontend/e2e/console.e2e.mjs
(playwright-core), against Lakeplane on pytest-django's live server and the real database.

This test builds nothing: it needs ``frontend/dist`` (``npm ci && npm run build`` in frontend/)
and fails with that instruction when the build is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from pytest_django.live_server_helper import LiveServer

from controlplane.core.roles import Role
from controlplane.tenancy.models import Organization, User
from tests.factories import MembershipFactory, OperationFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
SCRIPT = FRONTEND / "e2e" / "console.e2e.mjs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "console e2e: correct horse battery"
# Bounds the whole browser run, so a wedged browser fails the test instead of hanging CI.
BROWSER_RUN_TIMEOUT_S = 240


def _require_toolchain() -> str:
    if not (settings.FRONTEND_DIST / "index.html").is_file():
        pytest.fail(
            "frontend/dist is missing: build the console first "
            "(cd frontend && npm ci && npm run build)"
        )
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        pytest.fail("frontend/node_modules is missing: run `npm ci` in frontend/")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20+) is needed to drive the browser")
    return node


def test_sign_in_switch_org_open_docs_and_sign_out(live_server: LiveServer, tmp_path: Path) -> None:
    node = _require_toolchain()

    user: User = UserFactory(email="dana@example.com")
    user.set_password(PASSWORD)
    user.save()
    acme = Organization.objects.create(slug="acme-data", name="Acme Data")
    globex = Organization.objects.create(slug="globex", name="Globex Analytics")
    MembershipFactory(organization=acme, user=user, role=Role.OWNER)
    MembershipFactory(organization=globex, user=user, role=Role.VIEWER)
    # Acme has history for the operations table; Globex shows the empty state.
    for _ in range(3):
        OperationFactory(organization=acme, kind="computeplane.create")

    orgs = [
        {"slug": "acme-data", "name": "Acme Data", "role": "owner", "operations": 3},
        {"slug": "globex", "name": "Globex Analytics", "role": "viewer", "operations": 0},
    ]
    artifacts = Path(os.environ.get("LAKEPLANE_E2E_ARTIFACTS", tmp_path / "artifacts"))
    env = {
        **os.environ,
        "LAKEPLANE_BASE_URL": live_server.url,
        "LAKEPLANE_E2E_EMAIL": user.email,
        "LAKEPLANE_E2E_PASSWORD": PASSWORD,
        "LAKEPLANE_E2E_ORGS": json.dumps(orgs),
        "LAKEPLANE_E2E_ARTIFACTS": str(artifacts),
        "CHROMIUM_PATH": CHROMIUM,
    }
    run = subprocess.run(
        [node, str(SCRIPT)],
        cwd=FRONTEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=BROWSER_RUN_TIMEOUT_S,
    )
    output = f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}"
    assert run.returncode == 0, f"browser run failed (exit {run.returncode})\n{output}"
    assert "all checks passed" in run.stdout, output
    assert (artifacts / "console.png").stat().st_size > 0
