"""Billing's periodic work (Celery beat, docs/billing.md)."""

from __future__ import annotations

from celery import shared_task

from controlplane.billing import budgets, metering, rollups


@shared_task(name="controlplane.billing.tasks.rollup_usage")
def rollup_usage() -> dict[str, int]:
    """Rebuild the trailing window's facts and rollups, drop expired facts, check budgets."""
    counts = rollups.incremental()
    counts["pruned"] = rollups.prune()
    counts["budget_alerts"] = len(budgets.check_budgets())
    return counts


@shared_task(name="controlplane.billing.tasks.meter_marketplace")
def meter_marketplace() -> dict[str, int]:
    """Create the settled hours' marketplace records and send what is due."""
    created = metering.prepare()
    counts = metering.send()
    counts["created"] = created
    return counts
