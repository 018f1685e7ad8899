"""A verified cloud account in a fresh emulator account, and eager Celery for workflows.

The create workflow ends by starting the plane's local agent and waiting for it to register, so
the account comes with a live HTTP control plane (pytest-django's ``live_server``) that the agent
process calls, and a private directory for the agents, all stopped after the test."""

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
def local_agents(settings, live_server, tmp_path):
    """Local agents call ``live_server``; they live under ``tmp_path`` and are stopped after."""
    from controlplane.computeplanes.agentinstall import stop_all_local_agents

    settings.LAKEPLANE_AGENT_MODE = "sandbox"
    settings.LAKEPLANE_PUBLIC_URL = live_server.url
    settings.LAKEPLANE_LOCAL_AGENTS_DIR = str(tmp_path / "agents")
    # The agent's long poll returns within a second, so stopping it never waits long.
    settings.LAKEPLANE_AGENT_MAX_WAIT_SECONDS = 1
    yield tmp_path / "agents"
    stop_all_local_agents()


@pytest.fixture
def verified_account(sandbox, settings, owner, eager_celery, local_agents) -> CloudAccount:
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
