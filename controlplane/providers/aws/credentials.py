"""Temporary credentials for customer roles and the one place that builds boto3 clients.

Every boto3 client Lakeplane uses is made by :meth:`AwsClients.client`, so retry mode, timeouts
and the emulator endpoint are set once. Credentials for a customer role are STS temporary
credentials, refreshed by botocore before they expire, cached in memory per process and per
(account, role ARN, external ID); they are never persisted, and never logged — botocore's own
debug logs are scrubbed by :func:`install_log_redaction`.

The vendor's base credentials come from boto3's normal chain (environment, instance profile,
…). With an emulator endpoint and no credentials anywhere, dummy keys are used, because the
emulator accepts any key and a fresh sandbox machine has none.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import botocore.credentials
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from controlplane.providers.aws.metrics import instrument

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SANDBOX_ACCESS_KEY: Final = "testing"
# Codes that mean "this principal may not do that" (as opposed to "try again later").
ACCESS_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "InvalidClientTokenId",
    }
)


class AwsError(Exception):
    """Base of errors the AWS provider raises."""


class AwsUnavailable(AwsError):
    """AWS (or the network) failed after botocore's retries: try again later."""


class AwsAccessDenied(AwsError):
    """The principal may not perform ``operation``: permanent until the customer fixes it."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.message = message


def classify(operation: str, error: Exception) -> AwsError:
    """Turn a botocore exception into :class:`AwsAccessDenied` or :class:`AwsUnavailable`."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or code
        if code in ACCESS_DENIED_CODES:
            return AwsAccessDenied(operation, message)
        return AwsUnavailable(f"{operation} failed: {code}: {message}")
    return AwsUnavailable(f"{operation} failed: {type(error).__name__}")


@dataclass(frozen=True)
class AwsConfig:
    """How to reach AWS; built by the caller from its settings (no Django here).

    ``endpoint_url`` points every client at an emulator (the sandbox, ``AWS_ENDPOINT_URL``);
    ``None`` means AWS itself.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    # botocore "standard" mode: exponential backoff with jitter on throttling and 5xx. botocore's
    # ``max_attempts`` counts retries, so 5 means the first call and five retries: enough to ride
    # out a short throttling burst without stretching a Celery step past a minute.
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # The customer role's session; its MaxSessionDuration is 3600 in every Lakeplane artifact.
    session_duration_seconds: int = 3600
    # botocore refreshes on the next use once fewer than ``advisory`` seconds are left, and
    # blocks every thread on a refresh below ``mandatory``; both well before expiry.
    advisory_refresh_seconds: int = 15 * 60
    mandatory_refresh_seconds: int = 10 * 60


@dataclass(frozen=True)
class RoleTarget:
    """A customer role Lakeplane acts through. ``account_key`` is the caller's id for the account
    (e.g. the cloud account's ``acct_…`` id), used to cache and to forget credentials."""

    account_key: str
    role_arn: str
    external_id: str = field(repr=False)
    session_name: str = "lakeplane"


@dataclass(frozen=True)
class TemporaryCredentials:
    """STS credentials; ``repr`` shows no secret."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


class _FixedProvider(botocore.credentials.CredentialProvider):
    METHOD = "lakeplane-assume-role"

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.Credentials:
        return self._credentials


def session_name_for(org_slug: str, purpose: str = "") -> str:
    """An STS session name naming the org (CloudTrail shows it to the customer).

    STS allows ``[\\w+=,.@-]{2,64}``; anything else in the slug becomes ``-``.
    """
    raw = f"lakeplane-{org_slug}" + (f"-{purpose}" if purpose else "")
    return re.sub(r"[^\w+=,.@-]", "-", raw)[:64]


class AwsClients:
    """Builds boto3 clients and caches refreshing role sessions. One instance per process.

    Thread-safe: the cache and client construction share a lock (boto3 sessions are not
    thread-safe to create clients from; the clients themselves are).
    """

    def __init__(
        self,
        config: AwsConfig,
        *,
        base_session: boto3.Session | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._base = base_session or self._default_base_session(config)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._sessions: dict[tuple[str, str, str], boto3.Session] = {}

    @staticmethod
    def _default_base_session(config: AwsConfig) -> boto3.Session:
        session = boto3.Session(region_name=config.region)
        if config.endpoint_url and session.get_credentials() is None:
            return boto3.Session(
                aws_access_key_id=SANDBOX_ACCESS_KEY,
                aws_secret_access_key=SANDBOX_ACCESS_KEY,
                region_name=config.region,
            )
        return session

    def _client_config(self, region: str | None, max_attempts: int | None = None) -> Config:
        return Config(
            region_name=region or self.config.region,
            retries={"mode": "standard", "max_attempts": max_attempts or self.config.max_attempts},
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
            user_agent_extra="lakeplane",
        )

    def client(
        self,
        service: str,
        *,
        role: RoleTarget | None = None,
        credentials: TemporaryCredentials | None = None,
        region: str | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """A boto3 client for ``service``.

        With ``role``: acting as the customer role (cached, auto-refreshing credentials). With
        ``credentials``: exactly those (verification uses this for a one-off session). With
        neither: the vendor's own base credentials. ``max_attempts`` overrides the retry budget
        (provisioning keeps it small so a throttled step is re-scheduled, not slept on).
        """
        if role is not None and credentials is not None:
            raise ValueError("pass role or credentials, not both")
        config = self._client_config(region, max_attempts)
        with self._lock:
            if credentials is not None:
                client = self._base.client(
                    service,
                    endpoint_url=self.config.endpoint_url,
                    config=config,
                    aws_access_key_id=credentials.access_key_id,
                    aws_secret_access_key=credentials.secret_access_key,
                    aws_session_token=credentials.session_token,
                )
            else:
                session = self.session(role) if role is not None else self._base
                client = session.client(
                    service, endpoint_url=self.config.endpoint_url, config=config
                )
        # Every call and throttled attempt is counted (lakeplane_aws_calls_total, …).
        return instrument(client)

    def assume_role(
        self,
        role_arn: str,
        *,
        session_name: str,
        external_id: str | None,
        duration_seconds: int | None = None,
        sts_client: Any = None,
    ) -> TemporaryCredentials:
        """One sts:AssumeRole with the vendor's base credentials.

        Raises :class:`AwsAccessDenied` when STS refuses (trust policy, external ID, missing
        role) and :class:`AwsUnavailable` when AWS cannot be reached after retries.
        """
        sts = sts_client or self.client("sts")
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_seconds or self.config.session_duration_seconds,
        }
        if external_id is not None:
            params["ExternalId"] = external_id
        try:
            answer = sts.assume_role(**params)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise classify("sts:AssumeRole", exc) from None
        return TemporaryCredentials(
            access_key_id=answer["AccessKeyId"],
            secret_access_key=answer["SecretAccessKey"],
            session_token=answer["SessionToken"],
            expiration=answer["Expiration"],
        )

    def session(self, role: RoleTarget) -> boto3.Session:
        """The cached boto3 Session acting as ``role``; its credentials refresh themselves."""
        key = (role.account_key, role.role_arn, role.external_id)
        with self._lock:
            cached = self._sessions.get(key)
            if cached is not None:
                return cached

            def refresh() -> dict[str, str]:
                creds = self.assume_role(
                    role.role_arn, session_name=role.session_name, external_id=role.external_id
                )
                log.info("refreshed credentials for %s (%s)", role.account_key, role.role_arn)
                return {
                    "access_key": creds.access_key_id,
                    "secret_key": creds.secret_access_key,
                    "token": creds.session_token,
                    "expiry_time": creds.expiration.isoformat(),
                }

            refreshable = botocore.credentials.DeferredRefreshableCredentials(
                refresh_using=refresh, method=_FixedProvider.METHOD, time_fetcher=self._clock
            )
            # Set per instance: the class defaults (15/10 min) assume hour-long sessions.
            refreshable._advisory_refresh_timeout = self.config.advisory_refresh_seconds
            refreshable._mandatory_refresh_timeout = self.config.mandatory_refresh_seconds
            core = botocore.session.Session()
            core.register_component(
                "credential_provider",
                botocore.credentials.CredentialResolver([_FixedProvider(refreshable)]),
            )
            session = boto3.Session(botocore_session=core, region_name=self.config.region)
            self._sessions[key] = session
            return session

    def forget(self, account_key: str) -> None:
        """Drop cached sessions of an account (external ID rotated, account deleted)."""
        with self._lock:
            for key in [k for k in self._sessions if k[0] == account_key]:
                del self._sessions[key]


# --- keeping secrets out of logs ----------------------------------------------------------

_SECRET_PATTERNS: Final = (
    re.compile(r"(<(?:SecretAccessKey|SessionToken)>)[^<]*"),
    re.compile(
        r"""(["'](?:SecretAccessKey|SessionToken|secret_key|token|aws_session_token|"""
        r"""aws_secret_access_key)["']\s*:\s*b?["'])[^"']*"""
    ),
    re.compile(r"""(["']?X-Amz-Security-Token["']?\s*[:=]\s*b?["']?)[^"',\s&}]*""", re.I),
    re.compile(r"(Signature=)[0-9a-f]+"),
)
_REDACTED_LOGGER_PREFIXES: Final = ("botocore", "boto3", "urllib3", "s3transfer")
_installed = False
_install_lock = threading.Lock()


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Scrubs STS secrets, session tokens and signatures out of log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    """Attach :class:`RedactSecretsFilter` to the AWS SDK's loggers (idempotent).

    botocore logs response bodies (which hold AssumeRole's secret) and signing material at
    DEBUG. A logger's filters see only records logged to that very logger, so every SDK logger
    gets one.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        names = [
            name
            for name in list(logging.Logger.manager.loggerDict)
            if name.startswith(_REDACTED_LOGGER_PREFIXES)
        ]
        redaction = RedactSecretsFilter()
        for name in {*names, *_REDACTED_LOGGER_PREFIXES, "botocore.parsers", "botocore.endpoint"}:
            logging.getLogger(name).addFilter(redaction)
        _installed = True


install_log_redaction()
