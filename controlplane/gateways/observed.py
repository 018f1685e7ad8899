"""The gateway as the agent last reported it (``StatusReport.gateway``, stored by the agent API
as the plane's observed state): its address, ready replicas, config version, drained clusters."""

from __future__ import annotations

from typing import Any

from controlplane.agentapi.models import ObservedState
from controlplane.computeplanes.models import ComputePlane


def reported_gateway(plane: ComputePlane) -> dict[str, Any]:
    """The latest ``StatusReport.gateway`` of ``plane`` as JSON, ``{}`` when none."""
    document = (
        ObservedState.objects.filter(compute_plane_id=plane.pk)
        .values_list("document", flat=True)
        .first()
    )
    return (document or {}).get("gateway") or {}


def gateway_status(enabled: bool, replicas: int, reported: dict[str, Any]) -> str:
    if not enabled:
        return "disabled"
    ready = int(reported.get("replicas_ready") or 0)
    if not reported or ready == 0:
        return "pending"
    return "running" if ready >= replicas else "degraded"
