"""The console's resource screens in Chromium against the emulator: the onboarding wizard with
the test playing the customer, and a running cluster resized, stopped and (nearly) deleted, as an
owner and as a viewer. Operations are delivered by the test (``drive``), as the clusters tests do,
while the page follows them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.live_server_helper import LiveServer

from controlplane.cloudaccounts.aws import reset_aws_clients
from controlplane.cloudaccounts.models import CloudAccount
from controlplane.clusters.models import Cluster
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.roles import Role
from controlplane.sandbox.customers import create_customer_role
from tests.clusters.conftest import (  # noqa: F401  fixtures
    SimulatedAgent,
    drive,
    ready_plane,
    sim_agent,
    verified_account,
)
from tests.clusters.test_cluster_lifecycle import body
from tests.drift.conftest import eager_celery_tasks  # noqa: F401
from tests.e2e.browser import run_browser_script
from tests.e2e.test_console_browser import PASSWORD
from tests.factories import (
    CatalogFactory,
    ClusterFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _with_password(user) -> None:
    user.set_password(PASSWORD)
    user.save()


def test_onboarding_wizard_connects_a_cloud_account(
    live_server: LiveServer,
    tmp_path: Path,
    settings,
    owner,
    sandbox,
    eager_celery_tasks,  # noqa: F811  verification runs inside the verify request
) -> None:
    settings.AWS_ENDPOINT_URL = sandbox.endpoint_url
    settings.LAKEPLANE_VENDOR_PRINCIPAL = sandbox.vendor_principal
    reset_aws_clients()
    _with_password(owner.user)

    def play_the_customer(words: list[str]) -> str:
        assert words[0] == "customer-role"
        # What the customer's quick-create stack does in their account.
        return create_customer_role(
            sandbox.endpoint_url,
            external_id=words[1],
            account_id=sandbox.account_id,
            vendor_principal=sandbox.vendor_principal,
        ).role_arn

    artifacts = run_browser_script(
        "onboarding.e2e.mjs",
        live_server,
        tmp_path,
        {
            "LAKEPLANE_E2E_EMAIL": owner.user.email,
            "LAKEPLANE_E2E_PASSWORD": PASSWORD,
            "LAKEPLANE_E2E_ORG": owner.org.slug,
            "LAKEPLANE_E2E_AWS_ACCOUNT": sandbox.account_id,
        },
        play_the_customer,
    )
    account = CloudAccount.objects.get(organization=owner.org)
    assert (account.status, account.aws_account_id) == ("verified", sandbox.account_id)
    assert (artifacts / "onboarding-verified.png").stat().st_size > 0
    reset_aws_clients()


def test_cluster_page_resizes_stops_and_guards_delete(
    live_server: LiveServer,
    tmp_path: Path,
    settings,
    owner,
    ready_plane: ComputePlane,  # noqa: F811
    sim_agent: SimulatedAgent,  # noqa: F811
) -> None:
    # The simulated agent expects each report written at once (as in the clusters tests); the
    # page under test reads the cluster through the API either way.
    settings.LAKEPLANE_AGENT_INGEST_FLUSH_SECONDS = 0
    created = owner.client.post(
        f"/api/v1/orgs/{owner.org.slug}/clusters", body(ready_plane), format="json"
    )
    assert created.status_code == 202, created.content
    assert drive(created.json()["operation"]["id"], sim_agent).operation.status == "succeeded"
    cluster = Cluster.objects.get(pk=created.json()["id"])
    _with_password(owner.user)
    viewer = UserFactory()
    _with_password(viewer)
    MembershipFactory(organization=owner.org, user=viewer, role=Role.VIEWER)
    other = OrganizationFactory()
    foreign = ClusterFactory(organization=other)
    catalog = CatalogFactory(organization=owner.org, name="tpch_e2e")

    def deliver(words: list[str]) -> str:
        assert words[0] == "drive"
        return drive(words[1], sim_agent).operation.status

    artifacts = run_browser_script(
        "clusters.e2e.mjs",
        live_server,
        tmp_path,
        {
            "LAKEPLANE_E2E_EMAIL": owner.user.email,
            "LAKEPLANE_E2E_VIEWER_EMAIL": viewer.email,
            "LAKEPLANE_E2E_PASSWORD": PASSWORD,
            "LAKEPLANE_E2E_ORG": owner.org.slug,
            "LAKEPLANE_E2E_CLUSTER": json.dumps(
                {
                    "id": cluster.id,
                    "name": cluster.name,
                    "workers": cluster.workers_desired,
                    "max": cluster.workers_max,
                }
            ),
            "LAKEPLANE_E2E_FOREIGN_CLUSTER": f"/orgs/{other.slug}/clusters/{foreign.id}",
            "LAKEPLANE_E2E_CATALOG": catalog.name,
        },
        deliver,
    )
    cluster.refresh_from_db()
    assert (cluster.status, cluster.workers_desired) == ("stopped", 4)
    assert list(cluster.catalog_attachments.values_list("catalog_id", flat=True)) == [catalog.id]
    for png in ("cluster-resized.png", "cluster-delete-confirm.png", "cluster-viewer.png"):
        assert (artifacts / png).stat().st_size > 0


def test_billing_tokens_and_audit_log(live_server: LiveServer, tmp_path: Path, owner) -> None:
    # This month so far, generated through the real rollups (what `make run` users replay).
    call_command("billing_replay_month", org=owner.org.slug, stdout=io.StringIO())
    _with_password(owner.user)
    artifacts = run_browser_script(
        "team-billing.e2e.mjs",
        live_server,
        tmp_path,
        {
            "LAKEPLANE_E2E_EMAIL": owner.user.email,
            "LAKEPLANE_E2E_PASSWORD": PASSWORD,
            "LAKEPLANE_E2E_ORG": owner.org.slug,
        },
    )
    assert (artifacts / "statement.csv").read_text().startswith("date,cluster_id,")
    assert (artifacts / "billing.png").stat().st_size > 0
