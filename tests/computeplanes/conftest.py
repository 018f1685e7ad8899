"""A verified cloud account in a fresh emulator account, and eager Celery for workflows."""

from __future__ import annotations

import pytest

from controlplane.cloudaccounts.aws import reset_aws_clients
from controlplane.cloudaccounts.models import CloudAccount
from controlplane.sandbox.customers import create_customer_role
from tests.factories import CloudAccountFactory


@pytest.fixture
def eager_celery(settings):
    from controlplane.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def verified_account(sandbox, settings, owner, eager_celery) -> CloudAccount:
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_VENDOR_PRINCIPAL = sandbox.vendor_principal
    reset_aws_clients()
    account = CloudAccountFactory(organization=owner.org, aws_account_id=sandbox.account_id)
    customer = create_customer_role(
        sandbox.endpoint_url,
        external_id=account.external_id,
        account_id=sandbox.account_id,
        vendor_principal=sandbox.vendor_principal,
    )
    account.role_arn = customer.role_arn
    account.status = "verified"
    account.save()
    yield account
    reset_aws_clients()
