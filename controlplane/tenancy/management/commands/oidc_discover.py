"""``manage.py oidc_discover ISSUER``: the OIDC_OP_* settings for an IdP, as env lines."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.tenancy.oidc import DiscoveryError, discover


class Command(BaseCommand):
    help = (
        "Read the issuer's /.well-known/openid-configuration and print OIDC_OP_ISSUER and the "
        "endpoint settings as NAME=value lines for an env file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("issuer", help="the IdP's issuer URL, e.g. https://idp.example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            found = discover(options["issuer"])
        except DiscoveryError as exc:
            raise CommandError(str(exc)) from exc
        for name, value in found.items():
            self.stdout.write(f"{name}={value}")
