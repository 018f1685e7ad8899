"""``manage.py bootstrap --org SLUG --email EMAIL``: the first user of an installation."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from controlplane.core.errors import InvalidInput
from controlplane.tenancy import services
from controlplane.tenancy.models import SLUG_VALIDATOR


class Command(BaseCommand):
    help = (
        "Create an organization and its owner (idempotent) and print a new API token as "
        "'token: <api-token>'. The token is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--email", required=True, help="owner's email")
        parser.add_argument("--name", default=None, help="organization display name")
        parser.add_argument(
            "--password",
            default=None,
            help="also set a console password for the owner (sandbox convenience)",
        )
        parser.add_argument(
            "--token-name",
            default=None,
            help="name the token and revoke the owner's earlier live tokens of that name",
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=services.MAX_TOKEN_DAYS,
            help=f"the token's lifetime (default and most: {services.MAX_TOKEN_DAYS} days)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            SLUG_VALIDATOR(options["org"])
            validate_email(options["email"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        try:
            _org, user, issued = services.bootstrap(
                org_slug=options["org"],
                email=options["email"],
                org_name=options["name"],
                token_name=options["token_name"],
                expires_in_days=options["expires_in_days"],
            )
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        if options["password"]:
            user.set_password(options["password"])
            user.save(update_fields=["password"])
        self.stdout.write(f"token: {issued.secret}")
