"""``manage.py sandbox_apply_onboarding ACCT_ID``: play the customer in the sandbox.

Creates the cloud account's onboarding CloudFormation stack — the exact template the API
serves — in the emulator's copy of the customer's AWS account, and prints the role ARN to
verify with. Refuses to run against real AWS.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.cloudaccounts import onboarding
from controlplane.cloudaccounts.models import CloudAccount


class Command(BaseCommand):
    help = "Sandbox only: create a cloud account's onboarding stack in the local AWS emulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account_id", help="the cloud account's id (acct_…)")
        parser.add_argument("--stack-name", default="lakeplane-access")

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

        account = (
            CloudAccount.objects.select_related("organization")
            .filter(pk=options["account_id"])
            .first()
        )
        if account is None:
            raise CommandError(f"No cloud account {options['account_id']}.")
        cfn = admin_client(endpoint_url, "cloudformation", account.aws_account_id)
        cfn.create_stack(
            StackName=options["stack_name"],
            TemplateBody=json.dumps(onboarding.cloudformation_template(account)),
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = cfn.describe_stacks(StackName=options["stack_name"])["Stacks"][0]
        role_arn = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "RoleArn")
        self.stdout.write(f"role_arn: {role_arn}")
