"""Onboarding artifacts for one cloud account, all built from providers.aws.policies."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from controlplane.cloudaccounts.models import CloudAccount
from controlplane.providers.aws import onboarding_artifacts, policies


def _stack_name(account: CloudAccount) -> str:
    return f"lakeplane-access-{account.organization.slug}"[:128]


def onboarding_summary(account: CloudAccount) -> dict[str, Any]:
    return {
        "quick_create_url": onboarding_artifacts.quick_create_url(
            template_url=settings.LAKEPLANE_CFN_TEMPLATE_URL,
            stack_name=_stack_name(account),
            external_id=account.external_id,
            region=settings.AWS_DEFAULT_REGION,
        ),
        "trust_policy": policies.trust_policy(
            settings.LAKEPLANE_VENDOR_PRINCIPAL, account.external_id
        ),
        "permissions_policy": policies.permissions_policy(),
    }


def cloudformation_template(account: CloudAccount) -> dict[str, Any]:
    template = onboarding_artifacts.cloudformation_template(
        settings.LAKEPLANE_VENDOR_PRINCIPAL, account.external_id
    )
    template["Parameters"]["TenantTag"]["Default"] = account.organization.slug
    return template


def terraform_artifacts(account: CloudAccount) -> dict[str, Any]:
    variables = onboarding_artifacts.terraform_variables(
        vendor_principal=settings.LAKEPLANE_VENDOR_PRINCIPAL,
        external_id=account.external_id,
        tenant_tag=account.organization.slug,
    )
    return {
        "module_source": "infra/modules/customer-role",
        "variables": variables,
        "tfvars": onboarding_artifacts.terraform_tfvars(variables),
        "module_call": onboarding_artifacts.terraform_module_call(variables),
    }
