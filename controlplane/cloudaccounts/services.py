"""The write path for cloud accounts: create, rename, verify, rotate the external ID, delete."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.cloudaccounts.models import CloudAccount, CloudAccountStatus
from controlplane.core import audit, workflows
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, InvalidInput
from controlplane.core.models import Operation
from controlplane.providers.aws.external_id import generate_external_id
from controlplane.providers.aws.verification import InvalidRoleArn, parse_role_arn
from controlplane.tenancy.models import Organization

VERIFY_KIND = "cloudaccount.verify"


def create_cloud_account(
    *, actor: Actor, organization: Organization, name: str, aws_account_id: str
) -> CloudAccount:
    with transaction.atomic():
        if CloudAccount.objects.filter(
            organization=organization, aws_account_id=aws_account_id
        ).exists():
            raise InvalidInput(
                "This AWS account is already connected.",
                errors={"aws_account_id": [f"{aws_account_id} is already connected here."]},
            )
        try:
            with transaction.atomic():
                account = CloudAccount.objects.create(
                    organization=organization,
                    name=name,
                    aws_account_id=aws_account_id,
                    external_id=generate_external_id(),
                )
        except IntegrityError:
            raise InvalidInput(
                "This AWS account is already connected.",
                errors={"aws_account_id": [f"{aws_account_id} is already connected here."]},
            ) from None
        audit.record(
            actor=actor,
            organization=account.organization,
            action="cloudaccount.created",
            target=account,
            data={"aws_account_id": aws_account_id, "name": name},
        )
    return account


def rename_cloud_account(*, actor: Actor, account: CloudAccount, name: str) -> CloudAccount:
    with transaction.atomic():
        account.name = name
        account.save(update_fields=["name"])
        audit.record(
            actor=actor,
            organization=account.organization,
            action="cloudaccount.updated",
            target=account,
            data={"name": name},
        )
    return account


def validate_role_arn(account: CloudAccount, role_arn: str) -> str:
    try:
        role = parse_role_arn(role_arn)
    except InvalidRoleArn as exc:
        raise InvalidInput(
            "That is not an IAM role ARN.", errors={"role_arn": [str(exc)]}
        ) from None
    if role.account_id != account.aws_account_id:
        raise InvalidInput(
            "The role is in another AWS account.",
            errors={
                "role_arn": [
                    f"The role must be in account {account.aws_account_id}, not {role.account_id}."
                ]
            },
        )
    return str(role)


def start_verification(
    *, actor: Actor, account: CloudAccount, role_arn: str
) -> tuple[CloudAccount, Operation]:
    role_arn = validate_role_arn(account, role_arn)
    with transaction.atomic():
        locked = CloudAccount.objects.select_for_update().get(pk=account.pk)
        if locked.status == CloudAccountStatus.VERIFYING:
            raise Conflict("A verification of this account is already running.")
        locked.role_arn = role_arn
        locked.status = CloudAccountStatus.VERIFYING
        locked.checks = []
        locked.save(update_fields=["role_arn", "status", "checks"])
        operation = workflows.start_operation(
            actor=actor,
            organization=locked.organization,
            kind=VERIFY_KIND,
            target=locked,
            # The role and external ID are read from the account row when the task runs.
            params={},
        )
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="cloudaccount.verification_started",
            target=locked,
            data={"role_arn": role_arn, "operation": operation.id},
        )
    return locked, operation


def rotate_external_id(*, actor: Actor, account: CloudAccount) -> CloudAccount:
    with transaction.atomic():
        locked = CloudAccount.objects.select_for_update().get(pk=account.pk)
        if locked.status == CloudAccountStatus.VERIFYING:
            raise Conflict("Wait for the running verification to finish before rotating.")
        locked.external_id = generate_external_id()
        locked.external_id_rotated_at = timezone.now()
        # The role trusts the old ID only: it must be updated and verified again.
        locked.status = CloudAccountStatus.PENDING_ROLE
        locked.verified_at = None
        locked.checks = []
        locked.save()
        audit.record(
            actor=actor,
            organization=locked.organization,
            action="cloudaccount.external_id_rotated",
            target=locked,
        )
    return locked


def delete_cloud_account(*, actor: Actor, account: CloudAccount) -> None:
    # Compute planes will block this (409) while they exist in the account.
    with transaction.atomic():
        audit.record(
            actor=actor,
            organization=account.organization,
            action="cloudaccount.deleted",
            target=account,
            data={"aws_account_id": account.aws_account_id},
        )
        account.delete()
