"""Verify a customer's cross-account role before Lakeplane uses it.

:func:`verify_role` assumes the role with the external ID, then tries WITHOUT it — a role that
anyone in the vendor account could assume without the external ID is open to the confused
deputy problem, and AWS's guidance is to refuse it — then checks, with calls that change
nothing, that the role's permissions let Lakeplane build compute planes. Every check carries a
detail a customer can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.providers.aws.credentials import (
    AwsAccessDenied,
    AwsClients,
    AwsUnavailable,
    TemporaryCredentials,
    classify,
    session_name_for,
)

# A verification is one short look; the session must not outlive it by much.
VERIFICATION_SESSION_SECONDS: Final = 900
_ROLE_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role(?P<path>/(?:[\w+=,.@-]+/)*)"
    r"(?P<name>[\w+=,.@-]{1,64})"
)

CHECK_ROLE_ARN: Final = "role_arn"
CHECK_ASSUME_WITH_EXTERNAL_ID: Final = "assume_role_with_external_id"
CHECK_EXTERNAL_ID_REQUIRED: Final = "external_id_required"
CHECK_EC2: Final = "ec2_describe_vpcs"
CHECK_EKS: Final = "eks_list_clusters"
CHECK_IAM: Final = "iam_get_role"
CHECK_S3: Final = "s3_list_buckets"


class InvalidRoleArn(ValueError):
    """The text is not an IAM role ARN."""


@dataclass(frozen=True)
class RoleArn:
    partition: str
    account_id: str
    path: str
    name: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role{self.path}{self.name}"


def parse_role_arn(text: str) -> RoleArn:
    """Parse ``arn:aws:iam::123456789012:role/path/name``; raises :class:`InvalidRoleArn`."""
    match = _ROLE_ARN.fullmatch(text.strip())
    if match is None:
        raise InvalidRoleArn(
            "Enter the role's ARN, e.g. arn:aws:iam::123456789012:role/lakeplane-access/Name "
            "(the RoleArn output of the Lakeplane stack or Terraform module)."
        )
    return RoleArn(match["partition"], match["account"], match["path"], match["name"])


@dataclass(frozen=True)
class Check:
    """One verification check, as the API shows it: ``{name, ok, detail}``."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerificationResult:
    checks: list[Check]
    # HTTP attempts made, retries included (what AWS bills and throttles on).
    aws_calls: int

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failure_reasons(self) -> list[str]:
        return [c.detail for c in self.checks if not c.ok]


@dataclass
class _CallCounter:
    count: int = 0
    services: dict[str, int] = field(default_factory=dict)

    def attach(self, client: Any) -> Any:
        # before-send fires once per HTTP attempt, so retries are counted too.
        client.meta.events.register("before-send", self._on_send)
        return client

    def _on_send(self, **_: Any) -> None:
        self.count += 1


def _permission_checks(
    role: RoleArn, region: str
) -> list[tuple[str, str, str, Callable[[Any], object]]]:
    """(check name, service, IAM action, call) — each call reads and changes nothing."""
    return [
        (CHECK_EC2, "ec2", "ec2:DescribeVpcs", lambda c: c.describe_vpcs(MaxResults=5)),
        (CHECK_EKS, "eks", "eks:ListClusters", lambda c: c.list_clusters(maxResults=1)),
        (CHECK_IAM, "iam", "iam:GetRole", lambda c: c.get_role(RoleName=role.name)),
        (CHECK_S3, "s3", "s3:ListAllMyBuckets", lambda c: c.list_buckets()),
    ]


def verify_role(
    clients: AwsClients,
    *,
    role_arn: str,
    external_id: str,
    org_slug: str,
    expected_account_id: str | None = None,
    vendor_principal: str | None = None,
    region: str | None = None,
) -> VerificationResult:
    """Verify a customer role; returns every check, failed ones with an actionable detail.

    Raises :class:`AwsUnavailable` only when AWS could not be reached or kept throttling after
    retries — the caller should retry later; everything the customer must fix is a failed
    :class:`Check`, never an exception. ``vendor_principal`` only improves the wording.
    """
    counter = _CallCounter()
    checks: list[Check] = []
    who = vendor_principal or "the Lakeplane control plane"

    try:
        role = parse_role_arn(role_arn)
    except InvalidRoleArn as exc:
        return VerificationResult([Check(CHECK_ROLE_ARN, False, str(exc))], 0)
    if expected_account_id is not None and role.account_id != expected_account_id:
        detail = (
            f"The role is in AWS account {role.account_id}, but this cloud account is "
            f"{expected_account_id}. Create the role in account {expected_account_id}, or add "
            f"a cloud account for {role.account_id}."
        )
        return VerificationResult([Check(CHECK_ROLE_ARN, False, detail)], 0)
    checks.append(Check(CHECK_ROLE_ARN, True, f"Role {role.name} in account {role.account_id}."))

    sts = counter.attach(clients.client("sts", region=region))
    session_name = session_name_for(org_slug, "verify")

    credentials: TemporaryCredentials | None = None
    try:
        credentials = clients.assume_role(
            str(role),
            session_name=session_name,
            external_id=external_id,
            duration_seconds=VERIFICATION_SESSION_SECONDS,
            sts_client=sts,
        )
        checks.append(
            Check(
                CHECK_ASSUME_WITH_EXTERNAL_ID,
                True,
                "Lakeplane assumed the role with your external ID.",
            )
        )
    except AwsAccessDenied:
        checks.append(
            Check(
                CHECK_ASSUME_WITH_EXTERNAL_ID,
                False,
                f"Lakeplane could not assume {role}. Check that the role exists, and that its "
                f"trust policy allows {who} to call sts:AssumeRole with the condition "
                "StringEquals sts:ExternalId set to the external ID shown for this cloud "
                "account (re-create the stack or re-apply the Terraform module if the "
                "external ID was rotated).",
            )
        )

    try:
        clients.assume_role(
            str(role),
            session_name=session_name,
            external_id=None,
            duration_seconds=VERIFICATION_SESSION_SECONDS,
            sts_client=sts,
        )
        checks.append(
            Check(
                CHECK_EXTERNAL_ID_REQUIRED,
                False,
                f"The role can be assumed WITHOUT the external ID, so another customer of "
                f"Lakeplane could trick it into using your account (the confused deputy "
                f"problem). Add the condition StringEquals sts:ExternalId to every statement "
                f"of the trust policy of {role} that allows {who}, then verify again.",
            )
        )
    except AwsAccessDenied:
        checks.append(
            Check(
                CHECK_EXTERNAL_ID_REQUIRED,
                True,
                "The role refuses requests without the external ID.",
            )
        )

    for name, service, action, call in _permission_checks(role, region or clients.config.region):
        if credentials is None:
            checks.append(
                Check(name, False, f"Not checked ({action}): the role could not be assumed.")
            )
            continue
        client = counter.attach(clients.client(service, credentials=credentials, region=region))
        try:
            call(client)
        except (ClientError, BotoCoreError) as exc:
            error = classify(action, exc)
            if isinstance(error, AwsAccessDenied):
                checks.append(
                    Check(
                        name,
                        False,
                        f"The role's permissions do not allow {action}, which Lakeplane needs. "
                        "Update the role's policy from the latest Lakeplane onboarding "
                        "template (CloudFormation stack update or Terraform apply).",
                    )
                )
                continue
            raise error from None
        checks.append(Check(name, True, f"{action} is allowed."))

    return VerificationResult(checks, counter.count)


__all__ = [
    "CHECK_ASSUME_WITH_EXTERNAL_ID",
    "CHECK_EXTERNAL_ID_REQUIRED",
    "VERIFICATION_SESSION_SECONDS",
    "AwsUnavailable",
    "Check",
    "InvalidRoleArn",
    "RoleArn",
    "VerificationResult",
    "parse_role_arn",
    "verify_role",
]
