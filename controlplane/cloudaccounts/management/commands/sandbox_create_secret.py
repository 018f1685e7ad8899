"""``manage.py sandbox_create_secret ACCT_ID NAME``: play the customer's secret keeper.

Creates a Secrets Manager secret in the emulator's copy of the customer's AWS account and prints
its ARN — what a catalog's ``secrets`` takes. The value is read from standard input (so it is not
left in the shell history or the process list) and never printed. Lakeplane itself never reads
it: the compute plane's agent resolves the ARN inside the VPC. Refuses to run against real AWS.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.cloudaccounts.models import CloudAccount


class Command(BaseCommand):
    help = "Sandbox only: create a secret (value from stdin) in the customer's emulated account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account_id", help="the cloud account's id (acct_…)")
        parser.add_argument("name", help="the secret's name, e.g. lakeplane/pg-password")
        parser.add_argument("--region", default="us-east-1")

    def handle(self, *args: Any, **options: Any) -> None:
        from controlplane.sandbox.endpoint import running_endpoint

        endpoint_url = settings.AWS_ENDPOINT_URL or running_endpoint(settings.DATA_DIR)
        if not endpoint_url:
            raise CommandError(
                "No sandbox emulator is running (start it with `make run`; or set "
                "AWS_ENDPOINT_URL to your own): this command only talks to the sandbox emulator. "
                "Against real AWS, use your own tools in your own account."
            )
        from controlplane.sandbox.customers import admin_client

        account = CloudAccount.objects.filter(pk=options["account_id"]).first()
        if account is None:
            raise CommandError(f"No cloud account {options['account_id']}.")
        value = sys.stdin.read().rstrip("\n")
        if not value:
            raise CommandError("Give the secret's value on standard input.")
        secrets = admin_client(
            endpoint_url,
            "secretsmanager",
            account.aws_account_id,
            region=options["region"],
        )
        created = secrets.create_secret(Name=options["name"], SecretString=value)
        self.stdout.write(f"arn: {created['ARN']}")
