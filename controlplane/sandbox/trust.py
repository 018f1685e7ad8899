"""Enforce a role's trust policy on sts:AssumeRole, which moto does not do.

Real STS refuses AssumeRole unless an Allow statement of the role's trust policy names the caller
and all of its conditions hold, and no Deny statement matches. The sandbox needs that for the
confused-deputy tests: a role whose trust policy requires ``sts:ExternalId`` must refuse a request
with a missing or wrong external ID. Conditions this module does not understand fail closed, so
a policy the sandbox cannot judge is refused rather than silently allowed.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.iam.models import iam_backends


# Context keys the sandbox can evaluate for an AssumeRole request.
def _string_equals(actual: str, expected: str) -> bool:
    return actual == expected


_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringLike": fnmatch.fnmatchcase,
}


@dataclass(frozen=True)
class TrustDecision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Caller:
    account_id: str
    arn: str
    # A service principal (the sandbox's EKS Pod Identity), matched only by "Service" entries.
    service: str | None = None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if caller.service is not None:
        return caller.service in _as_list(principal.get("Service", []))
    for entry in _as_list(principal.get("AWS", [])):
        if entry in ("*", caller.arn, caller.account_id):
            return True
        if entry == f"arn:aws:iam::{caller.account_id}:root":
            return True
    return False


def _action_matches(action: Any) -> bool:
    return any(fnmatch.fnmatchcase("sts:AssumeRole", a) for a in _as_list(action))


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, str | None]) -> bool:
    for operator, clauses in conditions.items():
        qualifier_if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        compare = _STRING_OPERATORS.get(base)
        if compare is None:
            return False
        for key, expected in clauses.items():
            actual = context.get(key.lower())
            if actual is None:
                if qualifier_if_exists:
                    continue
                return False
            if not any(compare(actual, str(e)) for e in _as_list(expected)):
                return False
    return True


def evaluate(
    trust_policy: Mapping[str, Any], caller: Caller, external_id: str | None
) -> TrustDecision:
    context = {"sts:externalid": external_id, "aws:principalaccount": caller.account_id}
    allowed = False
    for statement in _as_list(trust_policy.get("Statement", [])):
        if not _action_matches(statement.get("Action", [])):
            continue
        if not _principal_matches(statement.get("Principal"), caller):
            continue
        if not _conditions_hold(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return TrustDecision(False, "an explicit deny in the trust policy")
        allowed = True
    if allowed:
        return TrustDecision(True, "allowed by the trust policy")
    return TrustDecision(False, "no statement of the trust policy allows this caller")


def check_assume_role(role_arn: str, caller: Caller, external_id: str | None) -> TrustDecision:
    """Judge an AssumeRole request against the role stored in moto's IAM backend."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return TrustDecision(False, f"{role_arn} is not a role ARN")
    account_id = parts[4]
    partition = parts[1]
    try:
        role = iam_backends[account_id][partition].get_role_by_arn(role_arn)
    except Exception:
        return TrustDecision(False, f"role {role_arn} does not exist")
    document = role.assume_role_policy_document
    policy = json.loads(unquote(document)) if isinstance(document, str) else document
    return evaluate(policy, caller, external_id)
