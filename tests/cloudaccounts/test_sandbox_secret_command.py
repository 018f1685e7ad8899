import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from controlplane.sandbox.customers import admin_client
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db

VALUE = "s3cr3t-value-7731"


def test_creates_the_secret_in_the_customer_account_and_prints_only_its_arn(
    sandbox, settings, monkeypatch
):
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    account = CloudAccountFactory(aws_account_id=sandbox.account_id)
    monkeypatch.setattr("sys.stdin", io.StringIO(VALUE + "\n"))
    out = StringIO()
    call_command("sandbox_create_secret", account.pk, "lakeplane/pg", stdout=out)
    printed = out.getvalue()
    assert VALUE not in printed
    arn = printed.strip().removeprefix("arn: ")
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:{sandbox.account_id}:secret:")
    secrets = admin_client(sandbox.endpoint_url, "secretsmanager", sandbox.account_id)
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == VALUE


def test_refuses_real_aws_and_an_empty_value(sandbox, settings, monkeypatch):
    account = CloudAccountFactory(aws_account_id=sandbox.account_id)
    settings.AWS_ENDPOINT_URL = ""
    with pytest.raises(CommandError, match="sandbox"):
        call_command("sandbox_create_secret", account.pk, "x")
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="standard input"):
        call_command("sandbox_create_secret", account.pk, "x")


def test_finds_the_running_emulator_without_aws_endpoint_url(
    sandbox, settings, monkeypatch, tmp_path
):
    # As the README shows it: no AWS_ENDPOINT_URL prefix; `make run` recorded the endpoint.
    from controlplane.sandbox import endpoint

    settings.AWS_ENDPOINT_URL = ""
    settings.DATA_DIR = str(tmp_path)
    endpoint.record(tmp_path, sandbox.endpoint_url)
    account = CloudAccountFactory(aws_account_id=sandbox.account_id)
    monkeypatch.setattr("sys.stdin", io.StringIO(VALUE + "\n"))
    out = StringIO()
    call_command("sandbox_create_secret", account.pk, "lakeplane/found", stdout=out)
    assert out.getvalue().startswith("arn: arn:aws:secretsmanager:")
