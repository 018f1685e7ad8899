"""Monthly budgets: at 50/80/100 % of actual or forecast spend the owners hear about it, once.

Each threshold fires at most once per organization and month (a unique row claims it before the
email goes out), whether actual spend or the month-end forecast crossed it first.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.billing.models import BillingProfile, BudgetAlert
from controlplane.billing.statements import Month, statement
from controlplane.core import audit

log = logging.getLogger(__name__)
BILLING_ACTOR = audit.Actor.system_actor("billing")


def check_budgets(now: datetime | None = None) -> list[BudgetAlert]:
    now = now or timezone.now()
    fired: list[BudgetAlert] = []
    profiles = BillingProfile.objects.filter(monthly_budget_cents__gt=0).select_related(
        "organization"
    )
    for profile in profiles:
        month = Month.of(now.astimezone(ZoneInfo(profile.time_zone)).date())
        fired.extend(check_budget(profile, month, now))
    return fired


def check_budget(profile: BillingProfile, month: Month, now: datetime) -> list[BudgetAlert]:
    budget = profile.monthly_budget_cents or 0
    s = statement(profile.organization, month, now=now)
    actual = s.total_cents
    forecast = s.forecast_total_cents if s.forecast_total_cents is not None else actual
    fired = []
    for threshold in settings.LAKEPLANE_BILLING_BUDGET_THRESHOLDS:
        limit = budget * threshold / 100
        if actual >= limit:
            basis, amount = "actual", actual
        elif forecast >= limit:
            basis, amount = "forecast", forecast
        else:
            continue
        alert = _claim(profile, month, threshold, basis, amount, budget, now)
        if alert is not None:
            fired.append(alert)
    return fired


def _claim(
    profile: BillingProfile,
    month: Month,
    threshold: int,
    basis: str,
    amount: int,
    budget: int,
    now: datetime,
) -> BudgetAlert | None:
    org = profile.organization
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                organization=org,
                month=month.first,
                threshold=threshold,
                basis=basis,
                amount_cents=amount,
                budget_cents=budget,
                fired_at=now,
            )
            audit.record(
                actor=BILLING_ACTOR,
                organization=org,
                action="billing.budget_threshold",
                target=("organization", org.pk),
                data={
                    "month": str(month),
                    "threshold": threshold,
                    "basis": basis,
                    "amount_cents": amount,
                    "budget_cents": budget,
                },
            )
    except IntegrityError:
        return None  # this threshold already fired this month
    _email_owners(org, month, threshold, basis, amount, budget)
    return alert


def _email_owners(
    org: Any, month: Month, threshold: int, basis: str, amount: int, budget: int
) -> None:
    from controlplane.tenancy.models import Membership

    recipients = list(
        Membership.objects.filter(organization=org, role="owner").values_list(
            "user__email", flat=True
        )
    )
    if not recipients:
        return
    what = "has reached" if basis == "actual" else "is forecast to reach"
    send_mail(
        subject=f"Lakeplane: {org.name} {what} {threshold}% of its {month} budget",
        message=(
            f"Spend for {org.name} in {month} {what} {threshold}% of the monthly budget: "
            f"{amount / 100:,.2f} of {budget / 100:,.2f} USD ({basis}).\n"
            f"See the statement: /orgs/{org.slug}/billing\n"
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=False,
    )
    log.info("budget alert sent", extra={"organization_id": org.pk, "threshold": threshold})
