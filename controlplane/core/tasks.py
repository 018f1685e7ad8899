"""Celery entry points of the operation engine, for autodiscovery. Tasks take ids only.

``advance_operation`` is defined in ``core/workflows.py``, beside the engine that sends it, so
that neither module imports the other in a loop.
"""

from __future__ import annotations

from celery import shared_task

from controlplane.core.workflows import advance_operation, resume_stalled_operations


@shared_task(ignore_result=True)
def resume_stalled() -> int:
    """Periodic (beat): send a new message for each operation whose message chain broke."""
    return len(resume_stalled_operations())


__all__ = ["advance_operation", "resume_stalled"]
