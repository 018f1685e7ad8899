"""The process's one AwsClients, configured from settings (endpoint override for the sandbox)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

from controlplane.providers.aws.credentials import AwsClients, AwsConfig, install_log_redaction
from controlplane.providers.aws.verification import VerificationResult, verify_role

if TYPE_CHECKING:
    from controlplane.cloudaccounts.models import CloudAccount


@lru_cache(maxsize=1)
def aws_clients() -> AwsClients:
    install_log_redaction()
    return AwsClients(
        AwsConfig(
            region=settings.AWS_DEFAULT_REGION,
            endpoint_url=settings.AWS_ENDPOINT_URL or None,
        )
    )


def reset_aws_clients() -> None:
    """Forget the cached clients (tests point settings at a new emulator)."""
    aws_clients.cache_clear()


def verify_account(account: CloudAccount) -> VerificationResult:
    """The read-only verification of ``account``'s role (the verify workflow and the drift
    check both use it). Raises AwsUnavailable when AWS does not answer."""
    return verify_role(
        aws_clients(),
        role_arn=account.role_arn,
        external_id=account.external_id,
        org_slug=account.organization.slug,
        expected_account_id=account.aws_account_id,
        vendor_principal=settings.LAKEPLANE_VENDOR_PRINCIPAL,
    )
