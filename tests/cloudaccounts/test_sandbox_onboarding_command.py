from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from controlplane.cloudaccounts.aws import reset_aws_clients
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


def test_command_creates_the_stack_and_prints_a_role_arn(sandbox, settings):
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_VENDOR_PRINCIPAL = sandbox.vendor_principal
    reset_aws_clients()
    account = CloudAccountFactory(aws_account_id=sandbox.account_id)
    out = StringIO()
    call_command("sandbox_apply_onboarding", account.pk, stdout=out)
    line = out.getvalue().strip()
    assert line.startswith(f"role_arn: arn:aws:iam::{sandbox.account_id}:role/")


def test_command_refuses_real_aws(settings):
    settings.AWS_ENDPOINT_URL = ""
    account = CloudAccountFactory()
    with pytest.raises(CommandError, match="sandbox"):
        call_command("sandbox_apply_onboarding", account.pk)
