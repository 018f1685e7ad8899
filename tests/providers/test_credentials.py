"""Role sessions: refresh before expiry, retries, caching, and no secret in any log line."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from controlplane.providers.aws import generate_external_id
from controlplane.providers.aws.credentials import AwsClients, AwsConfig, RoleTarget
from controlplane.sandbox.customers import create_customer_role
from controlplane.sandbox.pytest_plugin import Sandbox


@pytest.fixture
def role(sandbox: Sandbox) -> RoleTarget:
    external_id = generate_external_id()
    customer = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    sandbox.control.clear_calls()
    return RoleTarget(
        account_key="acct_test",
        role_arn=customer.role_arn,
        external_id=external_id,
        session_name="lakeplane-acme",
    )


def assume_calls(sandbox: Sandbox) -> list[str]:
    return [
        c.outcome
        for c in sandbox.control.calls(account=sandbox.account_id)
        if c.action == "AssumeRole"
    ]


class MovableClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_expired_credentials_are_refreshed_before_any_call_fails(
    sandbox: Sandbox, vendor_session: boto3.Session, role: RoleTarget
) -> None:
    clock = MovableClock()
    clients = AwsClients(
        AwsConfig(
            endpoint_url=sandbox.endpoint_url,
            session_duration_seconds=900,
            advisory_refresh_seconds=120,
            mandatory_refresh_seconds=60,
        ),
        base_session=vendor_session,
        clock=clock,
    )
    ec2 = clients.client("ec2", role=role)
    ec2.describe_vpcs()
    assert assume_calls(sandbox) == ["ok"]

    ec2.describe_vpcs()  # well inside the session: no new AssumeRole
    assert assume_calls(sandbox) == ["ok"]

    # Past expiry on both sides: the emulator now refuses the old keys (ExpiredToken), so only
    # a refresh before the call lets it succeed.
    clock.offset = timedelta(seconds=1000)
    sandbox.control.advance_clock(1000)
    ec2.describe_vpcs()
    assert assume_calls(sandbox) == ["ok", "ok"]
    outcomes = [c.outcome for c in sandbox.control.calls(account=sandbox.account_id)]
    assert "expired" not in outcomes
    assert all(o == "ok" for o in outcomes)


def test_the_emulator_refuses_expired_keys_without_refresh(
    sandbox: Sandbox, aws_clients: AwsClients, role: RoleTarget
) -> None:
    """The counterpart of the test above: the expiry check is real."""
    credentials = aws_clients.assume_role(
        role.role_arn,
        session_name="lakeplane-acme",
        external_id=role.external_id,
        duration_seconds=900,
    )
    ec2 = aws_clients.client("ec2", credentials=credentials)
    sandbox.control.advance_clock(1000)
    with pytest.raises(Exception, match="RequestExpired"):
        ec2.describe_vpcs()


def test_sessions_are_cached_per_role_and_thread_safe(
    sandbox: Sandbox, aws_clients: AwsClients, role: RoleTarget
) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            aws_clients.client("eks", role=role).list_clusters()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert aws_clients.session(role) is aws_clients.session(role)
    assert assume_calls(sandbox) == ["ok"]

    aws_clients.forget(role.account_key)
    aws_clients.client("eks", role=role).list_clusters()
    assert assume_calls(sandbox) == ["ok", "ok"]


def test_a_dropped_response_is_retried(
    sandbox: Sandbox, aws_clients: AwsClients, role: RoleTarget
) -> None:
    sandbox.control.add_fault("drop_response", service="ec2", action="CreateVpc", count=1)
    ec2 = aws_clients.client("ec2", role=role)
    ec2.create_vpc(
        CidrBlock="10.42.0.0/16",
        TagSpecifications=[
            {"ResourceType": "vpc", "Tags": [{"Key": "lakeplane:managed-by", "Value": "lakeplane"}]}
        ],
    )
    outcomes = [
        (c.action, c.outcome)
        for c in sandbox.control.calls(account=sandbox.account_id)
        if c.service == "ec2"
    ]
    assert outcomes == [("CreateVpc", "drop_response"), ("CreateVpc", "ok")]
    # The lost first answer still created a VPC: why reconcilers look up by tag first.
    tagged = ec2.describe_vpcs(
        Filters=[{"Name": "tag:lakeplane:managed-by", "Values": ["lakeplane"]}]
    )["Vpcs"]
    assert len(tagged) == 2


def test_no_credential_value_reaches_the_logs(
    sandbox: Sandbox, aws_clients: AwsClients, role: RoleTarget, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    aws_clients.client("ec2", role=role).describe_vpcs()
    credentials = aws_clients.assume_role(
        role.role_arn, session_name="lakeplane-acme", external_id=role.external_id
    )
    aws_clients.client("s3", credentials=credentials).list_buckets()
    session_credentials = aws_clients.session(role).get_credentials().get_frozen_credentials()

    text = caplog.text
    assert "AssumeRole" in text  # botocore did log the exchange at DEBUG
    for secret in (
        credentials.secret_access_key,
        credentials.session_token,
        session_credentials.secret_key,
        session_credentials.token,
    ):
        assert secret not in text
    assert "[redacted]" in text
    assert credentials.secret_access_key not in repr(credentials)
