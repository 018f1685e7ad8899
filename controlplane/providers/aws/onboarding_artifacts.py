"""Onboarding artifacts built from the one source of policies (``policies.py``).

The CloudFormation template (:func:`cloudformation_template`) and its quick-create console link
(:func:`quick_create_url`); the Terraform module ``infra/modules/customer-role`` — its policy
files are written by :func:`write_terraform_policy_files`
(``python -m controlplane.providers.aws.onboarding_artifacts write-terraform``) and a test
fails when they drift — plus the per-account module call and tfvars
(:func:`terraform_module_call`, :func:`terraform_tfvars`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from controlplane.providers.aws.policies import (
    ACCESS_POLICY_NAME,
    ACCESS_ROLE_PATH,
    AGENT_SECRETS_POLICY_NAME,
    MANAGED_IAM_PATH,
    NAME_PREFIX,
    SESSION_DURATION_SECONDS,
    TENANT_TAG_KEY,
    PolicyDocument,
    agent_secrets_policy,
    permissions_policy,
    render_json,
    trust_policy,
)

TERRAFORM_MODULE_DIR: Final = "infra/modules/customer-role"
TERRAFORM_PERMISSIONS_FILE: Final = "permissions-policy.json"
TERRAFORM_TRUST_TEMPLATE_FILE: Final = "trust-policy.json.tftpl"
TERRAFORM_AGENT_SECRETS_TEMPLATE_FILE: Final = "agent-secrets-policy.json.tftpl"
CLOUDFORMATION_CONSOLE: Final = "https://console.aws.amazon.com/cloudformation/home"

# --- CloudFormation ------------------------------------------------------------------------


def cloudformation_template(
    vendor_principal: str, external_id: str | None = None
) -> PolicyDocument:
    """A template that creates the cross-account role and outputs its ARN.

    The external ID is a parameter (quick-create links fill it in); pass ``external_id`` to
    make it the parameter's default, so the downloaded template works as is.
    """
    external_id_parameter: dict[str, Any] = {
        "Type": "String",
        "Description": "The external ID Lakeplane shows for this cloud account.",
        "MinLength": 32,
        "MaxLength": 64,
        "AllowedPattern": "[A-Za-z0-9]+",
        "NoEcho": False,
    }
    if external_id is not None:
        external_id_parameter["Default"] = external_id
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Lakeplane cross-account role: lets Lakeplane build and run compute planes "
        "in this account. Requires the external ID; grants no read of your data. Also the "
        "policy your compute planes' agents read catalog secrets with, inside your VPC.",
        "Parameters": {
            "ExternalId": external_id_parameter,
            "TenantTag": {
                "Type": "String",
                "Description": "Your Lakeplane organization, recorded as the lakeplane:org tag.",
                "Default": "",
            },
        },
        "Resources": {
            "LakeplaneRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Path": ACCESS_ROLE_PATH,
                    "Description": "Assumed by the Lakeplane control plane with an external ID.",
                    "MaxSessionDuration": SESSION_DURATION_SECONDS,
                    "AssumeRolePolicyDocument": trust_policy(
                        vendor_principal, {"Ref": "ExternalId"}
                    ),
                    "Policies": [
                        {"PolicyName": ACCESS_POLICY_NAME, "PolicyDocument": permissions_policy()}
                    ],
                    "Tags": [
                        {"Key": "lakeplane:role", "Value": "cross-account-access"},
                        {"Key": TENANT_TAG_KEY, "Value": {"Ref": "TenantTag"}},
                    ],
                },
            },
            "LakeplaneAgentSecretsPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "ManagedPolicyName": AGENT_SECRETS_POLICY_NAME,
                    "Path": MANAGED_IAM_PATH,
                    "Description": "Lets Lakeplane compute-plane agents (inside your VPC) read "
                    "the secrets your catalogs name. Narrow the Resource to limit which.",
                    "PolicyDocument": agent_secrets_policy("${AWS::AccountId}", substitute=True),
                },
            },
        },
        "Outputs": {
            "RoleArn": {
                "Description": "Paste this into Lakeplane to verify the cloud account.",
                "Value": {"Fn::GetAtt": ["LakeplaneRole", "Arn"]},
            },
            "AgentSecretsPolicyArn": {
                "Description": "Attached by Lakeplane to each compute plane's agent role.",
                "Value": {"Ref": "LakeplaneAgentSecretsPolicy"},
            },
        },
    }


def quick_create_url(
    *, template_url: str, stack_name: str, external_id: str, region: str = "us-east-1"
) -> str:
    """The console link that opens a prefilled "create stack" page for the template."""
    fragment = "/stacks/quickcreate?" + urlencode(
        {"templateURL": template_url, "stackName": stack_name, "param_ExternalId": external_id},
        quote_via=quote,
    )
    return f"{CLOUDFORMATION_CONSOLE}?{urlencode({'region': region})}#{fragment}"


# --- Terraform -----------------------------------------------------------------------------

# Terraform's templatefile() placeholders; values are validated by the module's variables
# (ARN and [A-Za-z0-9] shapes), so substitution cannot break the JSON.
_TF_VENDOR_PRINCIPAL: Final = "${vendor_principal}"
_TF_EXTERNAL_ID: Final = "${external_id}"
_TF_ACCOUNT_ID: Final = "${account_id}"


def terraform_policy_files() -> dict[str, str]:
    """The policy files ``infra/modules/customer-role`` reads, as this module renders them."""
    return {
        TERRAFORM_PERMISSIONS_FILE: render_json(permissions_policy()),
        TERRAFORM_TRUST_TEMPLATE_FILE: render_json(
            trust_policy(_TF_VENDOR_PRINCIPAL, _TF_EXTERNAL_ID)
        ),
        TERRAFORM_AGENT_SECRETS_TEMPLATE_FILE: render_json(agent_secrets_policy(_TF_ACCOUNT_ID)),
    }


def write_terraform_policy_files(repo_root: Path) -> list[Path]:
    """Regenerate the module's policy files; a test fails when they are out of date."""
    written = []
    for name, text in terraform_policy_files().items():
        path = repo_root / TERRAFORM_MODULE_DIR / name
        path.write_text(text)
        written.append(path)
    return written


def terraform_variables(
    *, vendor_principal: str, external_id: str, tenant_tag: str, name_prefix: str = NAME_PREFIX
) -> dict[str, str]:
    """The module's inputs for one cloud account; keys equal the module's variable names."""
    return {
        "vendor_principal": vendor_principal,
        "external_id": external_id,
        "tenant_tag": tenant_tag,
        "name_prefix": name_prefix,
    }


def _hcl_string(value: str) -> str:
    # JSON string escaping is valid HCL for the characters these values can hold; "${" and
    # "%{" are escaped so no value is ever read as a template expression.
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def terraform_tfvars(variables: Mapping[str, str]) -> str:
    """``terraform.tfvars`` content for :func:`terraform_variables` output."""
    width = max(len(k) for k in variables)
    return "".join(f"{k.ljust(width)} = {_hcl_string(v)}\n" for k, v in variables.items())


def terraform_module_call(
    variables: Mapping[str, str],
    *,
    module_name: str = "lakeplane_customer_role",
    source: str = "./infra/modules/customer-role",
) -> str:
    """A ``module`` block calling ``infra/modules/customer-role`` with the account's inputs."""
    entries = {"source": source, **variables}
    width = max(len(k) for k in entries)
    body = "".join(f"  {k.ljust(width)} = {_hcl_string(v)}\n" for k, v in entries.items())
    return (
        f'module "{module_name}" {{\n{body}}}\n\n'
        f'output "lakeplane_role_arn" {{\n  value = module.{module_name}.role_arn\n}}\n'
    )


def main(argv: list[str]) -> int:
    """``python -m controlplane.providers.aws.onboarding_artifacts [write-terraform|…]``."""
    repo_root = Path(__file__).resolve().parents[3]
    command = argv[0] if argv else "write-terraform"
    if command == "write-terraform":
        for path in write_terraform_policy_files(repo_root):
            print(path.relative_to(repo_root))
        return 0
    if command == "print-permissions":
        sys.stdout.write(render_json(permissions_policy()))
        return 0
    sys.stderr.write(
        "usage: python -m controlplane.providers.aws.onboarding_artifacts "
        "[write-terraform|print-permissions]\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
