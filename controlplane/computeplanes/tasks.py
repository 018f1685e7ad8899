"""Celery entry points for compute planes."""

from __future__ import annotations

from celery import shared_task

from controlplane.computeplanes import drift, sweeper


@shared_task(acks_late=True, ignore_result=True)
def sweep_orphaned_resources() -> None:
    """Beat: remove tagged resources whose compute plane is gone (see sweeper.py)."""
    sweeper.sweep()


@shared_task(acks_late=True, ignore_result=True)
def check_drift() -> None:
    """Beat (``check-drift``): send the drift checks that are due, staggered (see drift.py)."""
    drift.dispatch(send=send_check)


def send_check(kind: str, resource_id: str) -> None:
    task = check_account_drift if kind == "account" else check_plane_drift
    task.apply_async((resource_id,))


@shared_task(acks_late=True, ignore_result=True)
def check_account_drift(account_id: str) -> None:
    drift.check_cloud_account(account_id)


@shared_task(acks_late=True, ignore_result=True)
def check_plane_drift(plane_id: str) -> None:
    drift.check_compute_plane(plane_id)
