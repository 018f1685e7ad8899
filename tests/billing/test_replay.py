"""The README's replayed month: events and agent reports in, a statement a person can check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from controlplane.billing.models import BillingProfile, UsageDay, UsageHour, UsageMinute
from controlplane.billing.replay import replay_month
from controlplane.billing.statements import Month, statement
from controlplane.core.roles import Role
from tests.factories import OrganizationFactory

NOW = datetime(2026, 12, 7, 20, tzinfo=UTC)


def node_hours(org, **filters) -> Decimal:
    rows = UsageDay.objects.filter(organization_ref=org.pk, **filters)
    return Decimal(sum(r.node_seconds for r in rows)) / 3600


@pytest.mark.django_db
def test_two_replayed_days_are_the_hand_computed_node_hours(make_caller):
    org = OrganizationFactory(slug="demo")
    out = StringIO()
    call_command(
        "billing_replay_month", "--org", "demo", "--month", "2026-11", "--days", "2", stdout=out
    )
    assert "replayed 2026-11 for demo" in out.getvalue()
    # Sunday Nov 1 and Monday Nov 2, UTC. dashboards: 3 x m6i.xlarge for 48 h.
    assert node_hours(org, instance_type="m6i.xlarge", role="coordinator") == 48 + 11
    assert node_hours(org, instance_type="m6i.xlarge", role="worker") == 96
    # adhoc, Monday 08-19: 2 workers, 6 from 12 to 15.
    assert node_hours(org, instance_type="r6i.2xlarge") == 4 * 2 + 3 * 6 + 4 * 2
    # etl, 01-05 both nights: a m6i.large coordinator, 8 spot r6i.4xlarge workers.
    assert node_hours(org, instance_type="m6i.large", purchase_option="on_demand") == 8
    assert node_hours(org, instance_type="r6i.4xlarge", purchase_option="spot") == 64
    assert not UsageDay.objects.filter(organization_ref=org.pk, estimated_seconds__gt=0).exists()
    # Rollups agree with the facts they came from.
    minutes = sum(UsageMinute.objects.values_list("node_seconds", flat=True))
    assert minutes == sum(UsageHour.objects.values_list("node_seconds", flat=True))
    owner = make_caller(org, Role.OWNER)
    by_cluster = owner.client.get(
        "/api/v1/orgs/demo/billing/usage?start=2026-11-01&end=2026-11-03&group_by=cluster"
    ).json()
    rows = {r["name"]: r for r in by_cluster["rows"]}
    assert sorted(rows) == ["replay-adhoc", "replay-cache", "replay-dashboards", "replay-etl"]
    assert Decimal(rows["replay-cache"]["node_hours"]) == 2 * 48  # two caching workers
    assert Decimal(rows["replay-adhoc"]["node_hours"]) == 11 + 34
    assert all(r["amount"] > 0 for r in rows.values())
    assert by_cluster["totals"]["amount"] == sum(r["amount"] for r in rows.values())


@pytest.mark.django_db
def test_replay_is_repeatable_and_flags_the_agent_gap():
    org = OrganizationFactory()
    BillingProfile.objects.create(organization=org, time_zone="UTC")
    month = Month.parse("2026-11")
    replay_month(org, month, now=NOW, days=10)
    first = statement(org, month, now=NOW)
    replay_month(org, month, now=NOW, days=10)  # a second run replaces the first
    again = statement(org, month, now=NOW)
    assert again.total_cents == first.total_cents > 0
    # The agent is silent on the 10th 13:00-16:00: dashboards 3 nodes x 3 h, adhoc (a Tuesday)
    # 7 nodes x 2 h and 3 nodes x 1 h, billed from the clusters' state and flagged; the cache's
    # two workers x 3 h at its configured size.
    estimated = sum(
        UsageDay.objects.filter(organization_ref=org.pk).values_list("estimated_seconds", flat=True)
    )
    assert estimated == (9 + 14 + 3 + 6) * 3600


@pytest.mark.django_db
def test_command_refuses_unknown_orgs_and_months():
    with pytest.raises(CommandError, match="no organization"):
        call_command("billing_replay_month", "--org", "nobody")
    OrganizationFactory(slug="demo")
    with pytest.raises(CommandError, match="not a month"):
        call_command("billing_replay_month", "--org", "demo", "--month", "2026-13")
    with pytest.raises(CommandError, match="not started"):
        call_command("billing_replay_month", "--org", "demo", "--month", "2099-01")


@pytest.mark.django_db
def test_the_readme_budget_step_sends_the_owners_an_email(make_caller):
    from django.core import mail

    org = OrganizationFactory(slug="demo")
    owner = make_caller(org, Role.OWNER)
    response = owner.client.patch(
        "/api/v1/orgs/demo/billing/settings", {"monthly_budget_cents": 1000}, format="json"
    )
    assert response.status_code == 200, response.content
    out = StringIO()
    call_command("billing_replay_month", "--org", "demo", "--days", "1", stdout=out)
    assert "budget alerts sent: 0" not in out.getvalue()
    assert mail.outbox
    assert mail.outbox[0].to == [owner.user.email]
