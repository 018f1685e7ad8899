"""The verification workflow: prove the role works with the external ID, and only with it.

Two steps: ``run_checks`` makes the read-only AWS calls (assume with the external ID, try
without it, probe the permissions Lakeplane needs) and keeps the checks on the operation;
``record_verdict`` turns them into the account's status. AWS being unreachable or throttling
past the client's retries is "try again later", never a failed verification.
"""

from __future__ import annotations

from django.utils import timezone

from controlplane.cloudaccounts.aws import verify_account
from controlplane.cloudaccounts.models import CloudAccount, CloudAccountStatus
from controlplane.cloudaccounts.services import VERIFY_KIND
from controlplane.core.models import Operation
from controlplane.core.workflows import RetryLater, Step, Workflow, register_workflow
from controlplane.providers.aws.credentials import AwsUnavailable


def _account(operation: Operation) -> CloudAccount:
    return CloudAccount.objects.select_related("organization").get(pk=operation.target_id)


def run_checks(operation: Operation) -> str:
    account = _account(operation)
    try:
        result = verify_account(account)
    except AwsUnavailable as exc:
        raise RetryLater(f"AWS did not answer: {exc}", delay=10) from exc
    checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks]
    # Checks hold names and sentences only: no credential ever reaches this row.
    Operation.objects.filter(pk=operation.pk).update(
        resources={**operation.resources, "checks": checks, "aws_calls": result.aws_calls}
    )
    passed = sum(c.ok for c in result.checks)
    return f"{passed} of {len(checks)} checks passed in {result.aws_calls} AWS calls"


def record_verdict(operation: Operation) -> str:
    account = _account(operation)
    checks = Operation.objects.get(pk=operation.pk).resources.get("checks", [])
    ok = bool(checks) and all(check["ok"] for check in checks)
    account.checks = checks
    account.status = CloudAccountStatus.VERIFIED if ok else CloudAccountStatus.FAILED
    account.verified_at = timezone.now() if ok else None
    account.save(update_fields=["checks", "status", "verified_at"])
    if ok:
        return "verified"
    failed = ", ".join(check["name"] for check in checks if not check["ok"])
    return f"failed: {failed}"


def _on_failed(operation: Operation) -> None:
    CloudAccount.objects.filter(pk=operation.target_id).update(status=CloudAccountStatus.FAILED)


register_workflow(
    Workflow(
        kind=VERIFY_KIND,
        steps=[Step("run_checks", run_checks), Step("record_verdict", record_verdict)],
        on_failed=_on_failed,
    )
)
