"""Budget alerts: each threshold once a month, to the owners, audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import mail

from controlplane.billing.budgets import check_budgets
from controlplane.billing.models import BillingProfile, BudgetAlert
from controlplane.core.models import AuditEvent
from controlplane.core.roles import Role
from tests.billing.test_statements import hours
from tests.factories import ClusterFactory


@pytest.mark.django_db
def test_thresholds_fire_once_each(make_caller):
    cluster = ClusterFactory(worker_instance_type="m5.xlarge")
    org = cluster.organization
    make_caller(org, Role.OWNER)
    BillingProfile.objects.create(organization=org, monthly_budget_cents=100)
    from controlplane.billing import rollups

    # 11 node-hours x 1 unit x 5c = 55c: 55 % actual on Nov 2; the forecast is far above 100 %.
    hours(cluster, "m5.xlarge", "worker", "on_demand", 11, datetime(2026, 11, 1, tzinfo=UTC), 1)
    rollups.rebuild_days(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    now = datetime(2026, 11, 2, tzinfo=UTC)
    fired = check_budgets(now)
    assert sorted((a.threshold, a.basis) for a in fired) == [
        (50, "actual"),
        (80, "forecast"),
        (100, "forecast"),
    ]
    assert len(mail.outbox) == 3
    assert "50%" in mail.outbox[0].subject
    assert check_budgets(now) == []  # never twice in a month
    assert BudgetAlert.objects.count() == 3
    assert AuditEvent.objects.filter(action="billing.budget_threshold").count() == 3
