"""AWS provider: credentials, clients, customer-role policies and verification (no Django)."""

from controlplane.providers.aws.external_id import generate_external_id, is_valid_external_id

__all__ = ["generate_external_id", "is_valid_external_id"]
