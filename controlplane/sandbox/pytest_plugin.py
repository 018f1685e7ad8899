"""pytest fixtures for the sandbox cloud. Enable with ``pytest_plugins`` in tests/conftest.py.

One emulator per test process (so per xdist worker) on a free loopback port; every test gets
the layer reset (no faults, empty call log, real clock) and a fresh customer account id, so
tests never see each other's resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from controlplane.providers.aws.credentials import AwsClients, AwsConfig
from controlplane.sandbox.control import SandboxControl
from controlplane.sandbox.customers import VENDOR_PRINCIPAL, new_account_id
from controlplane.sandbox.server import SandboxCloud

REGION = "us-east-1"


@dataclass
class Sandbox:
    endpoint_url: str
    control: SandboxControl
    account_id: str  # a fresh customer account for this test
    vendor_principal: str = VENDOR_PRINCIPAL
    region: str = REGION


@pytest.fixture(scope="session")
def sandbox_cloud() -> Iterator[SandboxCloud]:
    cloud = SandboxCloud(port=0).start()
    yield cloud
    cloud.stop()


@pytest.fixture
def sandbox(sandbox_cloud: SandboxCloud) -> Sandbox:
    control = SandboxControl(sandbox_cloud.endpoint_url)
    control.reset()
    return Sandbox(sandbox_cloud.endpoint_url, control, new_account_id())


@pytest.fixture
def vendor_session() -> boto3.Session:
    """The vendor's base credentials: the emulator's dummy keys, whatever the environment has."""
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy key
        region_name=REGION,
    )


@pytest.fixture
def aws_clients(sandbox: Sandbox, vendor_session: boto3.Session) -> AwsClients:
    return AwsClients(
        AwsConfig(region=REGION, endpoint_url=sandbox.endpoint_url), base_session=vendor_session
    )
