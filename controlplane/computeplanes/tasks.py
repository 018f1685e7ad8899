"""Celery entry points for compute planes."""

from __future__ import annotations

from celery import shared_task

from controlplane.computeplanes import sweeper


@shared_task(acks_late=True, ignore_result=True)
def sweep_orphaned_resources() -> None:
    """Beat: remove tagged resources whose compute plane is gone (see sweeper.py)."""
    sweeper.sweep()
