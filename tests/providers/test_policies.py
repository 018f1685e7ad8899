"""The customer-role policies and every onboarding artifact built from them."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from controlplane.providers.aws import generate_external_id, onboarding_artifacts, policies
from tests.hcl import load_hcl

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / onboarding_artifacts.TERRAFORM_MODULE_DIR
VENDOR = "arn:aws:iam::123456789012:role/lakeplane-control-plane"

# Actions that read customer data or secrets; none may be granted on anything but Lakeplane's
# own buckets.
DATA_READS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAcl",
    "s3:SelectObjectContent",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "kms:Decrypt",
    "glue:GetTable",
    "glue:GetPartitions",
    "athena:GetQueryResults",
    "athena:StartQueryExecution",
    "ec2:GetPasswordData",
    "dynamodb:GetItem",
    "rds:DownloadDBLogFilePortion",
]
DESTRUCTIVE_VERBS = ("Delete", "Terminate", "Detach", "Disassociate", "Remove", "Revoke", "Release")


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(action: str) -> list[dict[str, Any]]:
    """Allow statements whose action patterns cover ``action``."""
    return [
        s
        for s in statements(policies.permissions_policy())
        if s["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action, a) for a in as_list(s["Action"]))
    ]


def test_no_wildcard_beyond_read_only_verbs() -> None:
    for statement in statements(policies.permissions_policy()):
        for action in as_list(statement["Action"]):
            _, _, verb = action.partition(":")
            assert action != "*", "a grant of every action"
            assert verb != "*", f"{action} grants a whole service"
            if "*" in verb:
                assert verb in ("Describe*", "List*"), f"{action}: only Describe*/List* may glob"


@pytest.mark.parametrize("action", DATA_READS)
def test_nothing_reads_customer_data(action: str) -> None:
    for statement in grants(action):
        resources = as_list(statement["Resource"])
        assert all(r.startswith(f"arn:aws:s3:::{policies.NAME_PREFIX}") for r in resources), (
            f"{action} is granted on {resources}"
        )


def test_destructive_actions_require_the_managed_tag() -> None:
    tag_condition = f"aws:ResourceTag/{policies.MANAGED_TAG_KEY}"
    destructive = [
        (statement, action)
        for statement in statements(policies.permissions_policy())
        for action in as_list(statement["Action"])
        if action.partition(":")[2].startswith(DESTRUCTIVE_VERBS)
    ]
    assert len(destructive) > 10  # the rule below is not vacuous
    for statement, action in destructive:
        condition = statement.get("Condition", {}).get("StringEquals", {})
        assert condition.get(tag_condition) == policies.MANAGED_TAG_VALUE, action


def test_iam_is_limited_to_lakeplane_paths_and_passrole_is_scoped() -> None:
    for statement in statements(policies.permissions_policy()):
        iam_actions = [a for a in as_list(statement["Action"]) if a.startswith("iam:")]
        if not iam_actions:
            continue
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{iam_actions} on every resource"
            assert (
                f"{policies.MANAGED_IAM_PATH}{policies.NAME_PREFIX}" in resource
                or policies.ACCESS_ROLE_PATH in resource
                or resource.endswith(":role/aws-service-role/*")
            ), resource
    pass_roles = {
        json.dumps(s["Condition"]["StringEquals"]["iam:PassedToService"]): as_list(s["Resource"])
        for s in grants("iam:PassRole")
    }
    managed = f"arn:aws:iam::*:role{policies.MANAGED_IAM_PATH}{policies.NAME_PREFIX}"
    assert pass_roles == {
        json.dumps(["eks.amazonaws.com", "ec2.amazonaws.com"]): [f"{managed}*"],
        # Pod Identity gets only the agent roles (lakeplane-<plane>-agent).
        json.dumps("pods.eks.amazonaws.com"): [f"{managed}*-agent"],
    }
    # No inline policies: they could grant anything. Only the AWS-managed EKS policies and the
    # customer's own agent-secrets policy attach.
    assert grants("iam:PutRolePolicy") == []
    (attach,) = grants("iam:AttachRolePolicy")
    assert attach["Condition"] == {
        "ArnEquals": {
            "iam:PolicyARN": [
                "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
                "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                "arn:aws:iam::*:policy/lakeplane/lakeplane-agent-secrets",
            ]
        }
    }


def test_s3_is_limited_to_lakeplane_buckets() -> None:
    for statement in statements(policies.permissions_policy()):
        if any(
            a.startswith("s3:") and a != "s3:ListAllMyBuckets" for a in as_list(statement["Action"])
        ):
            for resource in as_list(statement["Resource"]):
                assert resource.startswith(f"arn:aws:s3:::{policies.NAME_PREFIX}"), resource


def test_pod_identity_actions_are_tag_scoped() -> None:
    # The Pod Identity agent add-on and the agent's association: created only with the managed
    # tag, deleted only when they carry it; nothing else of add-ons or associations (no updates).
    for action in ("eks:CreateAddon", "eks:CreatePodIdentityAssociation"):
        (statement,) = grants(action)
        assert statement["Condition"] == {
            "StringEquals": {"aws:RequestTag/lakeplane:managed-by": "lakeplane"}
        }
    for action in ("eks:DeleteAddon", "eks:DeletePodIdentityAssociation"):
        (statement,) = grants(action)
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceTag/lakeplane:managed-by": "lakeplane"}
        }
    assert grants("eks:UpdateAddon") == grants("eks:UpdatePodIdentityAssociation") == []


def test_compute_plane_building_blocks_are_granted() -> None:
    for action in [
        "ec2:CreateVpc",
        "ec2:CreateNatGateway",
        "ec2:DescribeVpcs",
        "eks:CreateCluster",
        "eks:CreateNodegroup",
        "eks:ListClusters",
        "iam:CreateRole",
        "iam:PassRole",
        "s3:CreateBucket",
        "s3:ListAllMyBuckets",
        "iam:GetRole",
    ]:
        assert grants(action), f"{action} is missing"


def test_trust_policy_requires_the_external_id() -> None:
    external_id = generate_external_id()
    (statement,) = statements(policies.trust_policy(VENDOR, external_id))
    assert statement["Principal"] == {"AWS": VENDOR}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}


def test_cloudformation_template_passes_cfn_lint(tmp_path: Path) -> None:
    template = onboarding_artifacts.cloudformation_template(VENDOR, generate_external_id())
    path = tmp_path / "lakeplane-role.json"
    path.write_text(policies.render_json(template))
    # The cfn-lint command from the same environment, every rule at default severity.
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_template_embeds_the_policies() -> None:
    template = onboarding_artifacts.cloudformation_template(VENDOR)
    role = template["Resources"]["LakeplaneRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == policies.trust_policy(VENDOR, {"Ref": "ExternalId"})
    assert role["Policies"][0]["PolicyDocument"] == policies.permissions_policy()
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["LakeplaneRole", "Arn"]}
    assert "Default" not in template["Parameters"]["ExternalId"]


def test_quick_create_url() -> None:
    external_id = generate_external_id()
    url = onboarding_artifacts.quick_create_url(
        template_url="https://lakeplane-templates.s3.amazonaws.com/acct_1/role.json",
        stack_name="lakeplane-access",
        external_id=external_id,
        region="eu-west-1",
    )
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == onboarding_artifacts.CLOUDFORMATION_CONSOLE
    )
    assert parse_qs(parts.query) == {"region": ["eu-west-1"]}
    route, _, query = parts.fragment.partition("?")
    assert route == "/stacks/quickcreate"
    assert parse_qs(query) == {
        "templateURL": ["https://lakeplane-templates.s3.amazonaws.com/acct_1/role.json"],
        "stackName": ["lakeplane-access"],
        "param_ExternalId": [external_id],
    }


def test_terraform_policy_files_are_generated_from_policies_py() -> None:
    for name, text in onboarding_artifacts.terraform_policy_files().items():
        assert (MODULE / name).read_text() == text, (
            f"{name} is stale: run "
            "python -m controlplane.providers.aws.onboarding_artifacts write-terraform"
        )


def test_terraform_trust_template_renders_to_the_trust_policy() -> None:
    external_id = generate_external_id()
    rendered = (
        (MODULE / onboarding_artifacts.TERRAFORM_TRUST_TEMPLATE_FILE)
        .read_text()
        .replace("${vendor_principal}", VENDOR)
        .replace("${external_id}", external_id)
    )
    assert json.loads(rendered) == policies.trust_policy(VENDOR, external_id)


def _load_module() -> dict[str, Any]:
    merged: dict[str, list[Any]] = {}
    for path in sorted(MODULE.glob("*.tf")):
        for key, value in load_hcl(path.read_text()).items():
            if not key.startswith("__"):
                merged.setdefault(key, []).extend(value)
    return merged


def test_terraform_module_interface_matches_what_the_control_plane_hands_out() -> None:
    module = _load_module()
    declared = {name for block in module["variable"] for name in block}
    handed_out = onboarding_artifacts.terraform_variables(
        vendor_principal=VENDOR, external_id=generate_external_id(), tenant_tag="acme"
    )
    assert declared == set(handed_out)
    assert {name for block in module["output"] for name in block} == {
        "role_arn",
        "agent_secrets_policy_arn",
    }
    (role_block,) = [b["aws_iam_role"] for b in module["resource"] if "aws_iam_role" in b]
    assert role_block["lakeplane"]["path"] == policies.ACCESS_ROLE_PATH
    assert role_block["lakeplane"]["max_session_duration"] == policies.SESSION_DURATION_SECONDS


def test_rendered_module_call_and_tfvars_parse_and_carry_the_account_values() -> None:
    external_id = generate_external_id()
    variables = onboarding_artifacts.terraform_variables(
        vendor_principal=VENDOR, external_id=external_id, tenant_tag="acme ${evil}"
    )
    tfvars = load_hcl(onboarding_artifacts.terraform_tfvars(variables))
    call = load_hcl(onboarding_artifacts.terraform_module_call(variables))
    (module,) = call["module"]
    arguments = module["lakeplane_customer_role"]
    assert arguments["source"] == "./infra/modules/customer-role"
    assert arguments["external_id"] == tfvars["external_id"] == external_id
    assert tfvars["vendor_principal"] == VENDOR
    # A "${" in a value is escaped, never evaluated as an interpolation.
    assert tfvars["tenant_tag"] == "acme $${evil}"
    assert call["output"][0]["lakeplane_role_arn"]["value"] == (
        "${module.lakeplane_customer_role.role_arn}"
    )


def _terraform_binary() -> str | None:
    return shutil.which("terraform") or shutil.which("tofu")


@pytest.mark.skipif(
    _terraform_binary() is None,
    reason="no terraform or tofu binary: neither PyPI, npm nor Debian ships one that installs "
    "offline here; the python-hcl2 tests above still check the module",
)
def test_terraform_fmt_check_passes(tmp_path: Path) -> None:
    binary = _terraform_binary()
    assert binary is not None
    variables = onboarding_artifacts.terraform_variables(
        vendor_principal=VENDOR, external_id=generate_external_id(), tenant_tag="acme"
    )
    (tmp_path / "main.tf").write_text(onboarding_artifacts.terraform_module_call(variables))
    (tmp_path / "terraform.tfvars").write_text(onboarding_artifacts.terraform_tfvars(variables))
    for directory in (MODULE, tmp_path):
        result = subprocess.run(
            [binary, "fmt", "-check", "-diff", "-recursive", str(directory)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_metastore_databases_are_granted_but_their_passwords_are_not() -> None:
    for action in [
        "rds:CreateDBInstance",
        "rds:CreateDBSubnetGroup",
        "rds:DescribeDBInstances",
        "rds:DeleteDBInstance",
        "rds:CreateDBSnapshot",
        "secretsmanager:CreateSecret",
    ]:
        assert grants(action), f"{action} is missing"
    (create_secret,) = grants("secretsmanager:CreateSecret")
    # Only RDS may create secrets through the role, and only its own (rds!…).
    assert create_secret["Resource"] == "arn:aws:secretsmanager:*:*:secret:rds!*"
    assert create_secret["Condition"] == {
        "ForAnyValue:StringEquals": {"aws:CalledVia": "rds.amazonaws.com"}
    }
    for read in ("secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"):
        assert grants(read) == [], f"the control plane's role may not call {read}"
    (create,) = grants("rds:CreateDBInstance")
    assert create["Condition"]["StringEquals"] == {
        f"aws:RequestTag/{policies.MANAGED_TAG_KEY}": policies.MANAGED_TAG_VALUE
    }


# --- the agent's secrets policy: created by the customer's stack, attached to agent roles ------

ACCOUNT = "210987654321"


def test_agent_secrets_policy_grants_only_secret_reads_in_the_account() -> None:
    document = policies.agent_secrets_policy(ACCOUNT)
    granted = {
        action: statement
        for statement in statements(document)
        for action in as_list(statement["Action"])
    }
    assert all(s["Effect"] == "Allow" for s in statements(document))
    assert set(granted) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:Decrypt",
    }
    read = granted["secretsmanager:GetSecretValue"]
    assert read["Resource"] == f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:*"
    assert "Condition" not in read
    decrypt = granted["kms:Decrypt"]
    assert decrypt["Resource"] == f"arn:aws:kms:*:{ACCOUNT}:key/*"
    assert decrypt["Condition"] == {
        "StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"}
    }


def test_cloudformation_template_creates_the_agent_secrets_policy() -> None:
    template = onboarding_artifacts.cloudformation_template(VENDOR)
    policy = template["Resources"]["LakeplaneAgentSecretsPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    properties = policy["Properties"]
    assert properties["ManagedPolicyName"] == "lakeplane-agent-secrets"
    assert properties["Path"] == "/lakeplane/"
    # The stack fills in its own account: substituting it gives the policy for that account.
    rendered = json.loads(
        json.dumps(properties["PolicyDocument"]).replace("${AWS::AccountId}", ACCOUNT)
    )
    for statement in rendered["Statement"]:
        statement["Resource"] = statement["Resource"]["Fn::Sub"]
    assert rendered == policies.agent_secrets_policy(ACCOUNT)
    assert template["Outputs"]["AgentSecretsPolicyArn"]["Value"] == {
        "Ref": "LakeplaneAgentSecretsPolicy"
    }
    # The control plane's own role still cannot read a secret value.
    role_policy = template["Resources"]["LakeplaneRole"]["Properties"]["Policies"][0]
    assert "secretsmanager:GetSecretValue" not in json.dumps(role_policy)


def test_terraform_module_creates_the_agent_secrets_policy() -> None:
    rendered = (
        (MODULE / onboarding_artifacts.TERRAFORM_AGENT_SECRETS_TEMPLATE_FILE)
        .read_text()
        .replace("${account_id}", ACCOUNT)
    )
    assert json.loads(rendered) == policies.agent_secrets_policy(ACCOUNT)
    module = _load_module()
    (policy_block,) = [b["aws_iam_policy"] for b in module["resource"] if "aws_iam_policy" in b]
    assert policy_block["agent_secrets"]["name"] == "lakeplane-agent-secrets"
    assert policy_block["agent_secrets"]["path"] == "/lakeplane/"
    assert (
        onboarding_artifacts.TERRAFORM_AGENT_SECRETS_TEMPLATE_FILE
        in policy_block["agent_secrets"]["policy"]
    )
    # The role's own policy file, read by the module as is, grants no secret read either.
    permissions = json.loads((MODULE / onboarding_artifacts.TERRAFORM_PERMISSIONS_FILE).read_text())
    assert "secretsmanager:GetSecretValue" not in json.dumps(permissions)


def test_agent_secrets_policy_arn_matches_the_attach_condition() -> None:
    arn = policies.agent_secrets_policy_arn(ACCOUNT)
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/lakeplane/lakeplane-agent-secrets"
    (attach,) = grants("iam:AttachRolePolicy")
    # ArnEquals matches each ARN field with wildcards, as IAM does.
    matching = [
        pattern
        for pattern in attach["Condition"]["ArnEquals"]["iam:PolicyARN"]
        if all(
            fnmatch.fnmatchcase(part, want)
            for part, want in zip(arn.split(":", 5), pattern.split(":", 5), strict=True)
        )
    ]
    assert matching == ["arn:aws:iam::*:policy/lakeplane/lakeplane-agent-secrets"]
    other = f"arn:aws:iam::{ACCOUNT}:policy/lakeplane/lakeplane-admin"
    assert not any(
        fnmatch.fnmatchcase(other, pattern)
        for pattern in attach["Condition"]["ArnEquals"]["iam:PolicyARN"]
    )
