"""Celery entry points of the operation engine, for autodiscovery. Tasks take ids only.

``advance_operation`` is defined in ``core/workflows.py``, beside the engine that sends it, so
that neither module imports the other in a loop.
"""

from __future__ import annotations

from controlplane.core.workflows import advance_operation

__all__ = ["advance_operation"]
