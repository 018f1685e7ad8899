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
from dataclasses import dataclass, field
from typing import Any, Protocol

from computeplane_agent.contract import DesiredState, SecretRef
from computeplane_agent.render.catalogs import catalog_secret, catalog_secret_values
from computeplane_agent.render.cluster import (
    LABEL_CLUSTER,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    resource_prefix,
)
from computeplane_agent.render.metastore import metastore_secret

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


# --- the desired state's secrets as Kubernetes Secrets ------------------------------------------


@dataclass
class SecretObjects:
    """What one reconcile resolved: the Secrets to apply and what could not be read."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    catalog_failures: dict[str, str] = field(default_factory=dict)  # catalog id -> message
    metastore_failures: dict[str, str] = field(default_factory=dict)  # metastore id -> message


def resolve_secret_objects(
    desired: DesiredState,
    resolver: SecretResolver | None,
    known: dict[tuple[str, str | None], str],
    redactor: Redactor,
    log: logging.Logger,
) -> SecretObjects:
    """Resolve every SecretRef of ``desired`` into one Secret per cluster (its catalogs'
    credentials) and one per managed metastore (the database password).

    ``known`` holds the last value read per reference: a secret that cannot be read right now
    but was read before keeps its last value (a brief Secrets Manager outage does not take a
    catalog away). Each reference is read once per call, however many clusters attach it.
    """
    result = SecretObjects()
    fresh: dict[tuple[str, str | None], str | SecretUnavailable] = {}

    def read(ref: SecretRef) -> str:
        key = (ref.arn, ref.json_key)
        if key not in fresh:
            try:
                if resolver is None:
                    raise SecretUnavailable(ref, "the agent has no secret resolver")
                fresh[key] = resolver.resolve(ref)
            except SecretUnavailable as exc:
                fresh[key] = exc
        value = fresh[key]
        if isinstance(value, SecretUnavailable):
            if key in known:
                log.warning("%s; keeping the value read before", value)
                return known[key]
            raise value
        known[key] = value
        redactor.remember([value])
        return value

    resolved: dict[tuple[str, str], str] = {}
    for catalog in desired.catalogs:
        for secret_key, ref in sorted(catalog.secrets.items()):
            try:
                resolved[(catalog.id, secret_key)] = read(ref)
            except SecretUnavailable as exc:
                result.catalog_failures.setdefault(catalog.id, str(exc))
    for metastore in desired.metastores:
        try:
            password = read(metastore.database.password)
        except SecretUnavailable as exc:
            result.metastore_failures[metastore.id] = str(exc)
            continue
        result.objects.append(metastore_secret(metastore, password))
    for cluster in desired.clusters:
        usable = [c for c in desired.catalogs_of(cluster) if c.id not in result.catalog_failures]
        values = catalog_secret_values(usable, resolved)
        if values:
            prefix = resource_prefix(cluster.id)
            labels = {
                LABEL_MANAGED_BY: MANAGED_BY,
                LABEL_CLUSTER: cluster.id,
                "app.kubernetes.io/name": cluster.engine,
                "app.kubernetes.io/instance": prefix,
            }
            result.objects.append(catalog_secret(prefix, labels, values))
    for message in [*result.catalog_failures.values(), *result.metastore_failures.values()]:
        log.warning("%s", message)
    return result
