"""Celery entry points for the agent API."""

from __future__ import annotations

from celery import shared_task

from controlplane.agentapi import services


@shared_task(acks_late=True, ignore_result=True)
def agent_housekeeping() -> None:
    """Beat, once per heartbeat interval: mark silent agents stale, prune old report records."""
    services.mark_stale_agents()
    services.prune_reports()
