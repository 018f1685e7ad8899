"""The process's one AwsClients, configured from settings (endpoint override for the sandbox)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from controlplane.providers.aws.credentials import AwsClients, AwsConfig, install_log_redaction


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
