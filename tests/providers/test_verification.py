"""verify_role against the emulator over HTTP."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest

from controlplane.providers.aws import generate_external_id, policies
from controlplane.providers.aws.credentials import AwsClients, AwsUnavailable
from controlplane.providers.aws.verification import (
    CHECK_ASSUME_WITH_EXTERNAL_ID,
    CHECK_EXTERNAL_ID_REQUIRED,
    verify_role,
)
from controlplane.sandbox.customers import (
    VENDOR_PRINCIPAL,
    create_customer_role,
    create_role_with_trust,
)
from controlplane.sandbox.pytest_plugin import Sandbox

# Two AssumeRole calls (with and without the external ID) and four read-only permission checks.
MINIMUM_CALLS = 6


def by_name(result):  # type: ignore[no-untyped-def]
    return {c.name: c for c in result.checks}


def test_role_from_the_cloudformation_template_verifies(
    sandbox: Sandbox, aws_clients: AwsClients
) -> None:
    external_id = generate_external_id()
    role = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    sandbox.control.clear_calls()  # count verification only, not the seeding
    result = verify_role(
        aws_clients,
        role_arn=role.role_arn,
        external_id=external_id,
        org_slug="acme",
        expected_account_id=sandbox.account_id,
    )
    assert result.ok, result.failure_reasons
    assert result.aws_calls == MINIMUM_CALLS
    calls = sandbox.control.calls(account=sandbox.account_id)
    assert len(calls) == MINIMUM_CALLS
    assert not any(c.mutating for c in calls)
    assert [c.outcome for c in calls if c.action == "AssumeRole"] == ["ok", "access_denied"]


def test_wrong_external_id_fails_with_an_actionable_reason(
    sandbox: Sandbox, aws_clients: AwsClients
) -> None:
    role = create_customer_role(
        sandbox.endpoint_url, external_id=generate_external_id(), account_id=sandbox.account_id
    )
    result = verify_role(
        aws_clients, role_arn=role.role_arn, external_id=generate_external_id(), org_slug="acme"
    )
    checks = by_name(result)
    assert not result.ok
    assert not checks[CHECK_ASSUME_WITH_EXTERNAL_ID].ok
    assert "sts:ExternalId" in checks[CHECK_ASSUME_WITH_EXTERNAL_ID].detail
    assert checks[CHECK_EXTERNAL_ID_REQUIRED].ok
    assert result.aws_calls == 2  # nothing else is tried without a session


def test_role_assumable_without_external_id_is_rejected(
    sandbox: Sandbox, aws_clients: AwsClients
) -> None:
    external_id = generate_external_id()
    careless = policies.trust_policy(VENDOR_PRINCIPAL, external_id)
    del careless["Statement"][0]["Condition"]
    role = create_role_with_trust(
        sandbox.endpoint_url, account_id=sandbox.account_id, trust_policy=careless
    )
    result = verify_role(
        aws_clients, role_arn=role.role_arn, external_id=external_id, org_slug="acme"
    )
    checks = by_name(result)
    assert checks[CHECK_ASSUME_WITH_EXTERNAL_ID].ok
    assert not checks[CHECK_EXTERNAL_ID_REQUIRED].ok
    assert "WITHOUT the external ID" in checks[CHECK_EXTERNAL_ID_REQUIRED].detail
    assert "confused deputy" in checks[CHECK_EXTERNAL_ID_REQUIRED].detail
    assert not result.ok


def test_missing_permission_names_the_action(sandbox: Sandbox, aws_clients: AwsClients) -> None:
    external_id = generate_external_id()
    role = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    sandbox.control.add_fault(
        "access_denied", service="eks", action="ListClusters", account=sandbox.account_id
    )
    result = verify_role(
        aws_clients, role_arn=role.role_arn, external_id=external_id, org_slug="acme"
    )
    failed = [c for c in result.checks if not c.ok]
    assert [c.name for c in failed] == ["eks_list_clusters"]
    assert "eks:ListClusters" in failed[0].detail


def test_throttling_on_30_percent_of_calls_is_ridden_out(
    sandbox: Sandbox, aws_clients: AwsClients
) -> None:
    external_id = generate_external_id()
    role = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    sandbox.control.clear_calls()
    sandbox.control.add_fault("throttle", service=["sts", "iam", "ec2"], fraction=0.3)
    result = verify_role(
        aws_clients, role_arn=role.role_arn, external_id=external_id, org_slug="acme"
    )
    assert result.ok, result.failure_reasons
    attempts = sandbox.control.calls(account=sandbox.account_id)
    throttled = [c for c in attempts if c.outcome == "throttle"]
    assert throttled  # the fault really fired
    assert len(attempts) == result.aws_calls <= 2 * MINIMUM_CALLS


def test_persistent_throttling_is_unavailable_not_a_failed_check(
    sandbox: Sandbox, aws_clients: AwsClients, vendor_session: boto3.Session
) -> None:
    external_id = generate_external_id()
    role = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    sandbox.control.add_fault("throttle", service="sts")
    # Two attempts keep the backoff short; the outcome is the same with more.
    impatient = AwsClients(replace(aws_clients.config, max_attempts=2), base_session=vendor_session)
    with pytest.raises(AwsUnavailable):
        verify_role(impatient, role_arn=role.role_arn, external_id=external_id, org_slug="a")


def test_bad_arn_and_foreign_account_fail_without_calling_aws(
    sandbox: Sandbox, aws_clients: AwsClients
) -> None:
    for arn, expected in (
        ("arn:aws:iam::12345:role/x", "Enter the role's ARN"),
        ("arn:aws:iam::111122223333:role/lakeplane-access/x", "111122223333"),
    ):
        result = verify_role(
            aws_clients,
            role_arn=arn,
            external_id=generate_external_id(),
            org_slug="acme",
            expected_account_id=sandbox.account_id,
        )
        assert not result.ok
        assert expected in result.checks[0].detail
        assert result.aws_calls == 0
    assert sandbox.control.calls() == []
