"""The contract every reconciler follows, and the pieces they share. No Django here.

Discipline (each reconciler, every call):

* look up by tag before creating (``Ownership.filters()``), adopt what is found;
* tag on create with ``Ownership.tags()`` (managed-by, org, compute plane, Name);
* record each id the moment AWS returns it (``ReconcileContext.record``), so a crash between
  the create and the next step adopts rather than duplicates;
* pass a client token where the API takes one (``client_token()``: stable per resource, so a
  retried create after a lost response is the same create);
* treat NotFound on delete as done;
* waiting for AWS (NAT pending, EKS CREATING) raises :class:`WaitFor` — the engine
  re-schedules the step; nothing sleeps;
* a failure no retry can fix raises :class:`ReconcileError` with a message a customer can act
  on (:func:`translate_client_error`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

MANAGED_BY_KEY = "lakeplane:managed-by"
MANAGED_BY_VALUE = "lakeplane"
ORG_KEY = "lakeplane:org"
COMPUTE_PLANE_KEY = "lakeplane:compute-plane"
CLUSTER_KEY = "lakeplane:cluster"
NAME_PREFIX = "lakeplane-"


@dataclass(frozen=True)
class Ownership:
    """Whose a resource is: every Lakeplane resource carries these tags."""

    org_id: str
    compute_plane_id: str

    def tag_map(self, name: str = "", **extra: str) -> dict[str, str]:
        tags = {
            MANAGED_BY_KEY: MANAGED_BY_VALUE,
            ORG_KEY: self.org_id,
            COMPUTE_PLANE_KEY: self.compute_plane_id,
        }
        if name:
            tags["Name"] = name
        tags.update(extra)
        return tags

    def tags(self, name: str = "", **extra: str) -> list[dict[str, str]]:
        """EC2/IAM/S3 style ``[{"Key": …, "Value": …}]``."""
        return [{"Key": k, "Value": v} for k, v in self.tag_map(name, **extra).items()]

    def filters(self, **extra: str) -> list[dict[str, Any]]:
        """EC2 ``Filters`` matching this compute plane's resources (plus extra tag values)."""
        wanted = {MANAGED_BY_KEY: MANAGED_BY_VALUE, COMPUTE_PLANE_KEY: self.compute_plane_id}
        wanted.update(extra)
        return [{"Name": f"tag:{k}", "Values": [v]} for k, v in wanted.items()]

    def owns(self, tags: Mapping[str, str] | list[dict[str, str]] | None) -> bool:
        tag_map = _as_map(tags)
        return (
            tag_map.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE
            and tag_map.get(COMPUTE_PLANE_KEY) == self.compute_plane_id
        )

    def resource_name(self, suffix: str) -> str:
        return f"{NAME_PREFIX}{self.compute_plane_id}-{suffix}".replace("_", "-")

    def client_token(self, purpose: str) -> str:
        """Stable per (compute plane, purpose): a retried create is recognised as the same."""
        digest = hashlib.sha256(f"{self.compute_plane_id}:{purpose}".encode()).hexdigest()
        return digest[:64]


def _as_map(tags: Mapping[str, str] | list[dict[str, str]] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags}


@dataclass(frozen=True)
class ComputePlaneSpec:
    """What the customer asked for (API.md, compute planes POST body) plus engine settings."""

    name: str
    region: str
    vpc_cidr: str = "10.42.0.0/16"
    availability_zones: int = 2
    kubernetes_version: str = "1.31"
    endpoint_access: Literal["private", "public_and_private"] = "private"
    public_access_cidrs: tuple[str, ...] = ()
    # One NAT gateway per AZ survives an AZ outage; one shared NAT costs less.
    nat_mode: Literal["per_az", "single"] = "per_az"
    control_plane_logging: tuple[str, ...] = ("api", "audit", "authenticator")
    kms_key_arn: str | None = None

    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.vpc_cidr)


PlanVerb = Literal["create", "update", "delete", "adopt", "none", "wait"]


@dataclass(frozen=True)
class PlannedAction:
    action: PlanVerb
    kind: str  # e.g. "ec2:vpc", "ec2:subnet", "eks:cluster"
    name: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "kind": self.kind, "name": self.name, "detail": self.detail}


class WaitFor(Exception):
    """AWS is still getting there (pending, CREATING…): call again after ``delay`` seconds."""

    def __init__(self, detail: str, *, delay: float = 10.0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.delay = delay


class ReconcileError(Exception):
    """Cannot succeed by trying again; ``message`` says what the customer can do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ClientFactory = Callable[[str], Any]
Recorder = Callable[[str, Any], None]


@dataclass
class ReconcileContext:
    """Everything a reconciler needs for one call: no Django, no database."""

    clients: ClientFactory  # service name → boto3 client acting as the customer's role
    owner: Ownership
    spec: ComputePlaneSpec
    # Ids recorded so far (this and earlier steps), e.g. {"vpc_id": "vpc-…"}.
    state: dict[str, Any] = field(default_factory=dict)
    # Persist one id now (its own commit); also updates ``state``.
    record: Recorder | None = None

    def remember(self, key: str, value: Any) -> None:
        self.state[key] = value
        if self.record is not None:
            self.record(key, value)

    def forget(self, key: str) -> None:
        self.remember(key, None)


class Reconciler(Protocol):
    name: str  # the workflow step's name, e.g. "vpc"

    def plan(self, ctx: ReconcileContext) -> list[PlannedAction]: ...

    def ensure(self, ctx: ReconcileContext) -> str:
        """Converge; return a one-line summary for the operation step's detail."""
        ...

    def delete(self, ctx: ReconcileContext) -> str: ...


_NOT_FOUND_SUFFIXES = ("NotFound", "NotFoundException", "NoSuchEntity", "NoSuchBucket")
_QUOTA_CODES = {
    "VpcLimitExceeded",
    "AddressLimitExceeded",
    "NatGatewayLimitExceeded",
    "InternetGatewayLimitExceeded",
    "SecurityGroupLimitExceeded",
    "LimitExceeded",
    "ResourceLimitExceeded",
    "LimitExceededException",
    "ServiceQuotaExceededException",
    "TooManyBuckets",
}
_RETRYABLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "SlowDown",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "DependencyViolation",
    "IncorrectState",
    "ResourceInUseException",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    code = error_code(exc)
    return code.endswith(_NOT_FOUND_SUFFIXES) or code in {"InvalidGroup.NotFound"}


def translate_client_error(exc: ClientError, action: str) -> ReconcileError | WaitFor:
    """Map an AWS error to "wait and retry" or a permanent, customer-readable failure."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")) or code
    if code in _RETRYABLE_CODES:
        return WaitFor(f"{action}: {code}: {message}", delay=15)
    if code in _QUOTA_CODES:
        return ReconcileError(
            "quota_exceeded",
            f"{action} hit an AWS service quota ({code}: {message}). Raise the quota in the "
            "Service Quotas console or free capacity, then retry the operation.",
        )
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
        return ReconcileError(
            "permission_missing",
            f"The Lakeplane role may not call {action} ({message}). Update the role from the "
            "latest onboarding template, then retry the operation.",
        )
    if (
        code.startswith("InvalidParameter")
        or code.startswith("Invalid")
        or code
        in {
            "ValidationError",
            "InvalidRequestException",
            "InvalidParameterException",
        }
    ):
        return ReconcileError("invalid_request", f"AWS rejected {action}: {code}: {message}")
    return ReconcileError("aws_error", f"{action} failed: {code}: {message}")
