"""The sandbox layer over HTTP: trust-policy enforcement, faults, call log, control API."""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from controlplane.providers.aws import generate_external_id, policies
from controlplane.sandbox.customers import (
    VENDOR_PRINCIPAL,
    admin_client,
    create_customer_role,
    create_role_with_trust,
)
from controlplane.sandbox.pytest_plugin import Sandbox


def assume(sandbox: Sandbox, vendor: boto3.Session, role_arn: str, external_id: str | None):
    sts = vendor.client("sts", endpoint_url=sandbox.endpoint_url)
    params = {"RoleArn": role_arn, "RoleSessionName": "lakeplane-test"}
    if external_id is not None:
        params["ExternalId"] = external_id
    return sts.assume_role(**params)["Credentials"]


def test_correct_external_id_is_accepted(sandbox: Sandbox, vendor_session: boto3.Session) -> None:
    external_id = generate_external_id()
    role = create_role_with_trust(
        sandbox.endpoint_url,
        account_id=sandbox.account_id,
        trust_policy=policies.trust_policy(VENDOR_PRINCIPAL, external_id),
    )
    credentials = assume(sandbox, vendor_session, role.role_arn, external_id)
    assert credentials["AccessKeyId"]


@pytest.mark.parametrize("given", [None, "wrong", "x" * 43])
def test_missing_or_wrong_external_id_is_refused(
    sandbox: Sandbox, vendor_session: boto3.Session, given: str | None
) -> None:
    role = create_role_with_trust(
        sandbox.endpoint_url,
        account_id=sandbox.account_id,
        trust_policy=policies.trust_policy(VENDOR_PRINCIPAL, generate_external_id()),
    )
    with pytest.raises(ClientError) as refused:
        assume(sandbox, vendor_session, role.role_arn, given)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    (call,) = sandbox.control.calls(account=sandbox.account_id, since=0)[-1:]
    assert (call.action, call.outcome, call.target_account) == (
        "AssumeRole",
        "access_denied",
        sandbox.account_id,
    )


def test_other_principals_and_missing_roles_are_refused(
    sandbox: Sandbox, vendor_session: boto3.Session
) -> None:
    external_id = generate_external_id()
    role = create_role_with_trust(
        sandbox.endpoint_url,
        account_id=sandbox.account_id,
        trust_policy=policies.trust_policy("arn:aws:iam::999999999999:root", external_id),
    )
    for arn in (role.role_arn, f"arn:aws:iam::{sandbox.account_id}:role/does-not-exist"):
        with pytest.raises(ClientError) as refused:
            assume(sandbox, vendor_session, arn, external_id)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_cloudformation_stack_outputs_a_role_that_requires_the_external_id(
    sandbox: Sandbox, vendor_session: boto3.Session
) -> None:
    external_id = generate_external_id()
    role = create_customer_role(
        sandbox.endpoint_url, external_id=external_id, account_id=sandbox.account_id
    )
    assert role.role_arn.startswith(
        f"arn:aws:iam::{sandbox.account_id}:role{policies.ACCESS_ROLE_PATH}"
    )
    assert assume(sandbox, vendor_session, role.role_arn, external_id)["SessionToken"]
    with pytest.raises(ClientError):
        assume(sandbox, vendor_session, role.role_arn, None)


def test_drop_response_applies_the_call_then_loses_the_answer(sandbox: Sandbox) -> None:
    iam = admin_client(sandbox.endpoint_url, "iam", sandbox.account_id)
    sandbox.control.add_fault("drop_response", service="iam", action="CreateRole", count=1)
    trust = policies.trust_policy(VENDOR_PRINCIPAL, generate_external_id())
    # botocore retries the lost answer; the retry finds the role the first attempt created.
    with pytest.raises(ClientError) as retried:
        iam.create_role(RoleName="lakeplane-dropped", AssumeRolePolicyDocument=str(trust))
    assert retried.value.response["Error"]["Code"] == "EntityAlreadyExists"
    assert iam.get_role(RoleName="lakeplane-dropped")["Role"]["RoleName"] == "lakeplane-dropped"
    outcomes = [
        (c.action, c.outcome, c.mutating) for c in sandbox.control.calls(account=sandbox.account_id)
    ]
    assert outcomes == [
        ("CreateRole", "drop_response", True),
        ("CreateRole", "error", True),
        ("GetRole", "ok", False),
    ]


@pytest.mark.parametrize(
    ("service", "kind", "code"),
    [
        ("ec2", "throttle", "RequestLimitExceeded"),
        ("eks", "access_denied", "AccessDeniedException"),
        ("s3", "server_error", "InternalError"),
        ("iam", "access_denied", "AccessDenied"),
    ],
)
def test_faults_answer_as_aws_does_for_each_protocol(
    sandbox: Sandbox, service: str, kind: str, code: str
) -> None:
    client = admin_client(sandbox.endpoint_url, service, sandbox.account_id)
    client.meta.config.retries = {"mode": "standard", "max_attempts": 1}
    call = {
        "ec2": lambda: client.describe_vpcs(),
        "eks": lambda: client.list_clusters(),
        "s3": lambda: client.list_buckets(),
        "iam": lambda: client.list_roles(),
    }[service]
    sandbox.control.add_fault(kind, service=service, count=10)
    with pytest.raises(ClientError) as failed:
        call()
    assert failed.value.response["Error"]["Code"] == code
    sandbox.control.clear_faults()
    call()


def test_fraction_faults_fire_on_exactly_that_share_of_calls(sandbox: Sandbox) -> None:
    rule = sandbox.control.add_fault("server_error", service="ec2", fraction=0.3)
    ec2 = admin_client(sandbox.endpoint_url, "ec2", sandbox.account_id)
    for _ in range(10):
        ec2.describe_vpcs()  # retried through every injected error
    (state,) = sandbox.control.faults()
    assert state["id"] == rule["id"]
    assert state["matched"] > 10  # ten calls plus their retries
    assert state["fired"] == int(state["matched"] * 0.3)


def test_control_api_rejects_bad_fault_rules(sandbox: Sandbox) -> None:
    url = sandbox.endpoint_url + "/_lakeplane/faults"
    for body in (
        {"kind": "explode"},
        {"kind": "throttle", "fraction": 2},
        {"kind": "throttle", "count": 1, "fraction": 0.5},
        {"kind": "throttle", "service": 3},
    ):
        response = requests.post(url, json=body, timeout=5)
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert sandbox.control.faults() == []
