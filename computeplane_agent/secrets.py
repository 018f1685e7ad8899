"""Resolving Secrets Manager references inside the customer's VPC (DESIGN.md "Data separation").

The agent's own IAM role reads the customer's secrets; values go only into Kubernetes Secrets the
agent writes. A value must never reach a log line, a report, a ConfigMap or an exception message:
errors name the ARN (which is not secret) and nothing else, and ``Redactor`` scrubs every value
the agent has resolved from its log records and report messages as a second line of defence.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from computeplane_agent.contract import SecretRef

REDACTED = "[redacted]"


class SecretUnavailable(Exception):
    """A secret could not be read; the message names the ARN and never a value."""

    def __init__(self, ref: SecretRef, reason: str) -> None:
        key = f" (key {ref.json_key})" if ref.json_key else ""
        super().__init__(f"cannot read secret {ref.arn}{key}: {reason}")
        self.ref = ref


class SecretResolver(Protocol):
    def resolve(self, ref: SecretRef) -> str:
        """The secret's value; raises ``SecretUnavailable``."""


def _pick(ref: SecretRef, secret_string: str) -> str:
    if ref.json_key is None:
        return secret_string
    try:
        document: Any = json.loads(secret_string)
    except ValueError:
        # ``from None``: the decode error carries the whole document.
        raise SecretUnavailable(ref, "the secret is not a JSON object") from None
    if not isinstance(document, dict) or ref.json_key not in document:
        raise SecretUnavailable(ref, f"the secret has no key {ref.json_key!r}")
    return str(document[ref.json_key])


class AwsSecretResolver:
    """Secrets Manager with the agent's own credentials (the default chain: its IRSA role on EKS).

    ``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points it at the sandbox's emulator. The
    region is the one in the ARN, so a plane reads secrets wherever the customer keeps them.
    """

    def __init__(self, session: Any = None) -> None:
        import boto3

        self.session = session or boto3.Session()
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self.session.client(
                "secretsmanager",
                region_name=region,
                endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            )
        return self._clients[region]

    def resolve(self, ref: SecretRef) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        region = ref.arn.split(":")[3]
        try:
            answer = self._client(region).get_secret_value(SecretId=ref.arn)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretUnavailable(ref, str(code)) from None
        except BotoCoreError as exc:
            raise SecretUnavailable(ref, type(exc).__name__) from None
        value = answer.get("SecretString")
        if not isinstance(value, str):
            raise SecretUnavailable(ref, "the secret has no string value")
        return _pick(ref, value)


class MemorySecretResolver:
    """Secrets held in a dict (tests; ARN → SecretString)."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.secrets = dict(secrets or {})
        self.calls = 0

    def resolve(self, ref: SecretRef) -> str:
        self.calls += 1
        if ref.arn not in self.secrets:
            raise SecretUnavailable(ref, "ResourceNotFoundException")
        return _pick(ref, self.secrets[ref.arn])


class Redactor(logging.Filter):
    """Replaces every known secret value in log records and texts with ``[redacted]``."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()

    def remember(self, values: Iterable[str]) -> None:
        # Very short values would redact ordinary words; they are weak secrets anyway.
        self._values.update(v for v in values if len(v) >= 4)

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._values:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True
