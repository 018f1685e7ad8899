"""Seed the sandbox with "customer accounts": AWS accounts holding a Lakeplane access role.

moto keeps one set of backends per account id and picks the account from the
``x-moto-account-id`` header, so a fresh 12-digit id is a fresh, empty customer account.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from controlplane.providers.aws import onboarding_artifacts, policies

# moto's default account: requests signed with the sandbox's dummy keys act as the vendor.
VENDOR_ACCOUNT_ID = "123456789012"
VENDOR_PRINCIPAL = f"arn:aws:iam::{VENDOR_ACCOUNT_ID}:root"
# The sandbox's stand-in for EKS Pod Identity: requests signed with this key act as the
# pods.eks.amazonaws.com service principal (the emulator's layer), which may only assume roles
# whose trust policy names that service — a compute plane's agent role — and call nothing else.
POD_IDENTITY_ACCESS_KEY_ID = "LAKEPLANEPODIDENTITY"
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


def new_account_id() -> str:
    """A random 12-digit account id that is not the vendor's."""
    while True:
        account = str(secrets.randbelow(9 * 10**11) + 10**11)
        if account != VENDOR_ACCOUNT_ID:
            return account


def admin_client(
    endpoint_url: str, service: str, account_id: str, region: str = "us-east-1"
) -> Any:
    """A client acting as the customer account's administrator (for seeding only)."""
    client = boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy key
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )

    def as_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account_id

    client.meta.events.register("before-sign", as_account)
    return client


@dataclass(frozen=True)
class CustomerRole:
    account_id: str
    role_arn: str
    stack_name: str | None = None


def create_customer_role(
    endpoint_url: str,
    *,
    external_id: str,
    stack_name: str = "lakeplane-access",
    account_id: str | None = None,
    vendor_principal: str = VENDOR_PRINCIPAL,
    tenant_tag: str = "",
    region: str = "us-east-1",
) -> CustomerRole:
    """Create the onboarding CloudFormation stack (from policies.py) in a customer account: the
    access role and the ``lakeplane-agent-secrets`` policy compute planes' agents get."""
    account_id = account_id or new_account_id()
    cfn = admin_client(endpoint_url, "cloudformation", account_id, region)
    template = onboarding_artifacts.cloudformation_template(vendor_principal)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=policies.render_json(template),
        Parameters=[
            {"ParameterKey": "ExternalId", "ParameterValue": external_id},
            {"ParameterKey": "TenantTag", "ParameterValue": tenant_tag},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return CustomerRole(account_id, outputs["RoleArn"], stack_name)


def create_agent_secrets_policy(endpoint_url: str, account_id: str) -> str:
    """The onboarding stack's ``lakeplane-agent-secrets`` policy alone, for tests that build a
    compute plane without the stack; returns its ARN (an existing one is kept)."""
    iam = admin_client(endpoint_url, "iam", account_id)
    arn = policies.agent_secrets_policy_arn(account_id)
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_policy(
            PolicyName=policies.AGENT_SECRETS_POLICY_NAME,
            Path=policies.MANAGED_IAM_PATH,
            PolicyDocument=json.dumps(policies.agent_secrets_policy(account_id)),
        )
    return arn


def create_role_with_trust(
    endpoint_url: str,
    *,
    trust_policy: dict[str, Any],
    account_id: str | None = None,
    role_name: str = "lakeplane-handmade",
    path: str = policies.ACCESS_ROLE_PATH,
) -> CustomerRole:
    """A role with an arbitrary trust policy, e.g. one that forgot the external ID condition."""
    account_id = account_id or new_account_id()
    iam = admin_client(endpoint_url, "iam", account_id)
    role = iam.create_role(
        RoleName=role_name, Path=path, AssumeRolePolicyDocument=json.dumps(trust_policy)
    )["Role"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName=policies.ACCESS_POLICY_NAME,
        PolicyDocument=json.dumps(policies.permissions_policy()),
    )
    return CustomerRole(account_id, role["Arn"])
