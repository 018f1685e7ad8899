"""``python -m controlplane.sandbox serve`` and ``create-customer-role`` as separate processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from controlplane.providers.aws import generate_external_id
from controlplane.providers.aws.credentials import AwsClients, AwsConfig
from controlplane.providers.aws.verification import verify_role
from controlplane.sandbox.control import SandboxControl

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane.sandbox", "serve", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    control = SandboxControl(url, timeout=1)
    deadline = time.monotonic() + 30
    while not control.healthy():
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the emulator did not start within 30 s"
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.e2e
def test_served_emulator_seeds_a_customer_role_that_verifies(served: str) -> None:
    external_id = generate_external_id()
    seeded = subprocess.run(
        [
            sys.executable,
            "-m",
            "controlplane.sandbox",
            "create-customer-role",
            "--external-id",
            external_id,
            "--stack-name",
            "lakeplane-cli",
            "--endpoint-url",
            served,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    role_arn = seeded.stdout.strip()
    assert role_arn.startswith("arn:aws:iam::")
    clients = AwsClients(
        AwsConfig(endpoint_url=served),
        base_session=boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ),
    )
    result = verify_role(clients, role_arn=role_arn, external_id=external_id, org_slug="cli")
    assert result.ok, result.failure_reasons


def test_create_customer_role_rejects_a_malformed_external_id() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controlplane.sandbox",
            "create-customer-role",
            "--external-id",
            "short",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "32 to 64 letters and digits" in result.stderr
