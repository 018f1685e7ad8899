"""The agent's Secrets Manager resolver against the sandbox's emulator."""

from __future__ import annotations

import json

import boto3
import pytest

from computeplane_agent.contract import SecretRef
from computeplane_agent.secrets import AwsSecretResolver, SecretUnavailable
from controlplane.sandbox.pytest_plugin import Sandbox

VALUE = "s3cr3t-from-the-emulator"


def test_resolves_whole_and_json_secrets_and_names_only_the_arn(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="eu-west-1",
    )
    client = session.client("secretsmanager", endpoint_url=sandbox.endpoint_url)
    plain = client.create_secret(Name="lp-test-plain", SecretString=VALUE)["ARN"]
    rds = client.create_secret(
        Name="lp-test-rds", SecretString=json.dumps({"username": "hive", "password": VALUE})
    )["ARN"]
    resolver = AwsSecretResolver(session)
    assert resolver.resolve(SecretRef(arn=plain)) == VALUE
    assert resolver.resolve(SecretRef(arn=rds, json_key="password")) == VALUE

    with pytest.raises(SecretUnavailable) as missing_key:
        resolver.resolve(SecretRef(arn=rds, json_key="token"))
    assert rds in str(missing_key.value)
    assert VALUE not in str(missing_key.value)
    with pytest.raises(SecretUnavailable) as not_json:
        resolver.resolve(SecretRef(arn=plain, json_key="password"))
    assert VALUE not in str(not_json.value)
    assert not_json.value.__cause__ is None  # the decode error (holding the value) is dropped
    gone = plain.rsplit(":", 1)[0] + ":lp-test-missing-AbCdEf"
    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException"):
        resolver.resolve(SecretRef(arn=gone))
