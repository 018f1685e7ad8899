"""The sandbox survives a restart: ``make run``'s own processes, stopped the way Ctrl-C stops them.

One ``manage.py runlakeplane`` (web, worker, beat, the AWS emulator, local agents) in a data
directory of its own, with the sandbox's defaults (SQLite, filesystem broker) as ``make run``
has them. Through the API: an account is verified, a plane becomes ready, a cluster runs. Then
SIGINT (what the terminal sends on Ctrl-C; the children run in their own sessions) and a second
``runlakeplane`` in the same directory: the cluster can be stopped and started again — its node
groups are deleted and re-created in the restored EKS cluster of the restored VPC — and the
account verifies again against the restored role.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controlplane.sandbox.customers import admin_client
from tests.drift.conftest import delete_vpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Lakeplane:
    """One ``runlakeplane`` run: its output (read on a thread), its banner's token."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runlakeplane", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.token = self._wait_for_banner()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def _wait_for_banner(self) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = re.search(r"API token: (lpt_\S+)", self.text())
            if found:
                return found[1]
            assert self.proc.poll() is None, self.text()
            time.sleep(0.2)
        raise AssertionError(f"no banner within 120 s:\n{self.text()}")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the local web server
            f"{self.base}/api/v1/orgs/demo/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from error

    def wait(self, path: str, field: str, want: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        shown: dict[str, Any] = {}
        while time.monotonic() < deadline:
            shown = self.call("GET", path)
            if shown[field] == want:
                return shown
            assert shown[field] not in ("failed", "unusable"), (shown, self.text()[-4000:])
            time.sleep(0.5)
        raise AssertionError(f"{path}: {field} {shown.get(field)!r}, not {want!r}\n{self.text()}")

    def finished(self, operation_id: str) -> None:
        op = self.wait(f"operations/{operation_id}", "status", "succeeded")
        assert op["status"] == "succeeded", op

    def ctrl_c(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=90)
        self._reader.join(timeout=10)
        assert self.proc.returncode == 0, self.text()
        return self.text()


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "DATABASE_URL", "CELERY_", "LAKEPLANE_", "DJANGO_SETTINGS"))
    }
    env.update(
        LAKEPLANE_DATA_DIR=str(tmp_path / "data"),
        LAKEPLANE_EMULATOR_PORT=str(free_port()),
        LAKEPLANE_MAX_POLL_SECONDS="0.5",
        LAKEPLANE_AGENT_MAX_WAIT_SECONDS="1",
        LAKEPLANE_AGENT_HEARTBEAT_SECONDS="1",
        # The drift check every few seconds instead of every 15 minutes.
        LAKEPLANE_DRIFT_TICK_SECONDS="2",
        LAKEPLANE_DRIFT_INTERVAL_SECONDS="6",
    )
    return env


def test_an_account_plane_and_cluster_continue_after_ctrl_c_and_make_run(sandbox_env):
    port = free_port()
    first = Lakeplane(sandbox_env, port)
    try:
        account = first.call(
            "POST", "cloud-accounts", {"name": "sandbox", "aws_account_id": "210987654321"}
        )
        applied = subprocess.run(
            [sys.executable, "manage.py", "sandbox_apply_onboarding", account["id"]],
            cwd=ROOT,
            env=sandbox_env,
            capture_output=True,
            text=True,
            check=True,
        )
        role_arn = applied.stdout.strip().removeprefix("role_arn: ")
        verify = first.call(
            "POST", f"cloud-accounts/{account['id']}/verify", {"role_arn": role_arn}
        )
        first.finished(verify["operation"]["id"])
        first.wait(f"cloud-accounts/{account['id']}", "status", "verified")
        plane = first.call(
            "POST",
            "compute-planes",
            {"name": "analytics", "cloud_account": account["id"], "region": "us-east-1"},
        )
        first.finished(plane["operation"]["id"])
        first.wait(f"compute-planes/{plane['id']}", "status", "ready")
        cluster = first.call(
            "POST",
            "clusters",
            {
                "name": "adhoc",
                "compute_plane": plane["id"],
                "engine": "trino",
                "coordinator": {"instance_type": "m5.xlarge"},
                "workers": {"instance_type": "r5.2xlarge", "count": 1, "max_count": 2},
            },
        )
        first.finished(cluster["operation"]["id"])
        first.wait(f"clusters/{cluster['id']}", "status", "running")
        # The README's command as written: no AWS_ENDPOINT_URL, it finds the emulator in .data/.
        secret = subprocess.run(
            [sys.executable, "manage.py", "sandbox_create_secret", account["id"], "lakeplane/db"],
            cwd=ROOT,
            env=sandbox_env,
            input="the-password",
            capture_output=True,
            text=True,
            check=True,
        )
        secret_arn = secret.stdout.strip().removeprefix("arn: ")
        assert secret_arn.startswith("arn:aws:secretsmanager:us-east-1:210987654321:secret:")
    finally:
        stopped = first.ctrl_c()
    assert "emulator state saved" in stopped
    assert "SIGKILL" not in stopped
    assert "token: token:" not in stopped

    second = Lakeplane(sandbox_env, port)
    try:
        assert "AWS state was restored" in second.text()
        assert "NOT restored" not in second.text()
        second.wait(f"compute-planes/{plane['id']}", "status", "ready")
        stop = second.call("POST", f"clusters/{cluster['id']}/stop")
        second.finished(stop["operation"]["id"])
        second.wait(f"clusters/{cluster['id']}", "status", "stopped")
        start = second.call("POST", f"clusters/{cluster['id']}/start")
        second.finished(start["operation"]["id"])
        second.wait(f"clusters/{cluster['id']}", "status", "running")
        again = second.call(
            "POST", f"cloud-accounts/{account['id']}/verify", {"role_arn": role_arn}
        )
        second.finished(again["operation"]["id"])
        second.wait(f"cloud-accounts/{account['id']}", "status", "verified")
        # The customer's secret came back too, under the same ARN (random suffix included).
        endpoint = (Path(sandbox_env["LAKEPLANE_DATA_DIR"]) / "emulator-endpoint").read_text()
        secrets = admin_client(endpoint.strip(), "secretsmanager", "210987654321")
        assert secrets.get_secret_value(SecretId=secret_arn)["SecretString"] == "the-password"

        # Behind Lakeplane's back the customer deletes the VPC: within one check interval
        # (shortened here) the plane is degraded with the finding; one repair brings it back
        # and the cluster runs on it.
        vpc_id = second.call("GET", f"compute-planes/{plane['id']}")["resources"]["vpc_id"]
        delete_vpc(
            SimpleNamespace(endpoint_url=endpoint.strip(), account_id="210987654321"), vpc_id
        )
        degraded = second.wait(f"compute-planes/{plane['id']}", "status", "degraded", timeout=90)
        assert f"The VPC {vpc_id} no longer exists." in [f["detail"] for f in degraded["findings"]]
        repair = second.call("POST", f"compute-planes/{plane['id']}/repair")
        second.finished(repair["operation"]["id"])
        repaired = second.wait(f"compute-planes/{plane['id']}", "status", "ready")
        assert repaired["findings"] == []
        assert repaired["resources"]["vpc_id"] != vpc_id
        stop = second.call("POST", f"clusters/{cluster['id']}/stop")
        second.finished(stop["operation"]["id"])
        start = second.call("POST", f"clusters/{cluster['id']}/start")
        second.finished(start["operation"]["id"])
        second.wait(f"clusters/{cluster['id']}", "status", "running")
    finally:
        second.ctrl_c()
