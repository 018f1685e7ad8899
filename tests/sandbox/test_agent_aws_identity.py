"""The local sandbox agent reads the customer's secrets as the compute plane's agent role.

A process gets exactly what ``start_local_agent`` hands the agent (its AWS config files and
environment, nothing of the test's), resolves a secret through the agent's own resolver, and
reports which identity AWS saw.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from controlplane.computeplanes.agentinstall import sandbox_aws_environment
from controlplane.providers.aws import generate_external_id
from controlplane.providers.aws.reconcilers import iam
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    ReconcileContext,
)
from controlplane.sandbox.customers import (
    POD_IDENTITY_ACCESS_KEY_ID,
    admin_client,
    create_customer_role,
)
from controlplane.sandbox.pytest_plugin import Sandbox

REPO = Path(__file__).resolve().parents[2]
SECRET_VALUE = "s3cr3t-only-the-agent-reads"

AGENT_SCRIPT = """
import json, sys
import boto3
from computeplane_agent.contract import SecretRef
from computeplane_agent.secrets import AwsSecretResolver, SecretUnavailable

ref = SecretRef(arn=sys.argv[1])
identity = boto3.client("sts").get_caller_identity()
try:
    value = AwsSecretResolver().resolve(ref)
except SecretUnavailable as exc:
    value = None
    print(str(exc), file=sys.stderr)
print(json.dumps({"arn": identity["Arn"], "account": identity["Account"], "value": value}))
"""


def _agent_role(sandbox: Sandbox) -> tuple[str, str]:
    """Onboard the customer account (stack: access role + agent-secrets policy) and run the
    compute plane's IAM step in it; returns the agent role's name and ARN."""
    create_customer_role(
        sandbox.endpoint_url,
        external_id=generate_external_id(),
        account_id=sandbox.account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    owner = Ownership(org_id="org_test", compute_plane_id=f"cp_{secrets.token_hex(6)}")
    ctx = ReconcileContext(
        clients=lambda service: admin_client(sandbox.endpoint_url, service, sandbox.account_id),
        owner=owner,
        spec=ComputePlaneSpec(name="analytics", region=sandbox.region),
    )
    iam.reconciler.ensure(ctx)
    return owner.resource_name("agent"), ctx.state["agent_role_arn"]


def _run_as_agent(env: dict[str, str], home: Path, secret_arn: str) -> dict[str, Any]:
    # Only what the local agent gets: no AWS_* of the test run, a HOME without ~/.aws.
    process_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(REPO),
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", AGENT_SCRIPT, secret_arn],
        env=process_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    answer["stderr"] = result.stderr
    return answer


@pytest.fixture
def customer_secret(sandbox: Sandbox) -> str:
    client = admin_client(sandbox.endpoint_url, "secretsmanager", sandbox.account_id)
    arn: str = client.create_secret(Name="lakeplane/orders-db", SecretString=SECRET_VALUE)["ARN"]
    return arn


def test_the_local_agent_reads_a_customer_secret_as_the_planes_agent_role(
    sandbox: Sandbox, customer_secret: str, tmp_path: Path
) -> None:
    role_name, role_arn = _agent_role(sandbox)
    env = sandbox_aws_environment(
        tmp_path, endpoint_url=sandbox.endpoint_url, region=sandbox.region, agent_role_arn=role_arn
    )
    assert env["AWS_PROFILE"] == "lakeplane-agent"
    assert set(env) == {
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_PROFILE",
    }
    # The files live in the agent's own directory; the credentials file is private.
    assert Path(env["AWS_CONFIG_FILE"]).parent == tmp_path
    assert Path(env["AWS_SHARED_CREDENTIALS_FILE"]).stat().st_mode & 0o077 == 0

    answer = _run_as_agent(env, tmp_path, customer_secret)

    assert answer["value"] == SECRET_VALUE
    # AWS saw the compute plane's agent role in the customer's account, nobody else.
    assert answer["account"] == sandbox.account_id
    assert answer["arn"].startswith(f"arn:aws:sts::{sandbox.account_id}:assumed-role/{role_name}/")
    # It got there by assuming the agent role (as EKS Pod Identity does; one per boto3
    # session), and the secret was read with those credentials in the customer's account.
    calls = sandbox.control.calls(account=None)
    assume = [
        c for c in calls if c.action == "AssumeRole" and c.target_account == sandbox.account_id
    ]
    assert assume
    assert {c.outcome for c in assume} == {"ok"}
    reads = [c for c in calls if c.action == "GetSecretValue"]
    assert [(c.account, c.outcome) for c in reads] == [(sandbox.account_id, "ok")]


def test_the_pod_identity_key_reads_nothing_itself_and_assumes_only_agent_roles(
    sandbox: Sandbox, customer_secret: str, tmp_path: Path
) -> None:
    customer = create_customer_role(
        sandbox.endpoint_url,
        external_id=generate_external_id(),
        account_id=sandbox.account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    # Pointed at the customer's access role (which trusts Lakeplane's vendor account, not
    # pods.eks.amazonaws.com), the agent's configuration gets nothing.
    env = sandbox_aws_environment(
        tmp_path,
        endpoint_url=sandbox.endpoint_url,
        region=sandbox.region,
        agent_role_arn=customer.role_arn,
    )
    result = subprocess.run(
        [sys.executable, "-c", AGENT_SCRIPT, customer_secret],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
        | env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "AccessDenied" in result.stderr
    # Nor does the Pod Identity key itself read a secret.
    direct = boto3.client(
        "secretsmanager",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id=POD_IDENTITY_ACCESS_KEY_ID,
        aws_secret_access_key="sandbox-pod-identity",
    )
    with pytest.raises(ClientError) as refused:
        direct.get_secret_value(SecretId=customer_secret)
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
