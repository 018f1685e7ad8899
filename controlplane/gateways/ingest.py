"""What the plane's gateway reports through the agent: query records and wake requests.

The agent API authenticates the agent and sends ``queries_reported`` / ``wake_requested`` with
the plane's id (``controlplane.agentapi.services``); these listeners answer.

Query records are metadata. Their text is kept only when the plane's gateway has query text
turned on (``query_text_retention.enabled``, an admin's choice) and only for the retention's
days; otherwise it is dropped here, before anything is written or logged. A record is stored
once per (plane, query id), so a retried report changes nothing; a record naming a cluster
that is not on the reporting agent's plane is refused and listed in the answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from computeplane_agent import contract
from controlplane.clusters import services as clusters
from controlplane.clusters.models import Cluster, ClusterStatus
from controlplane.computeplanes.models import ComputePlane
from controlplane.core.audit import Actor
from controlplane.core.errors import Conflict, NotFound
from controlplane.gateways.models import Gateway, QueryRecord

WAKE_ACTOR = Actor.system_actor("gateway")
SLEEPING = (ClusterStatus.STOPPED, "suspended")
ON_ITS_WAY = (
    ClusterStatus.STARTING,
    ClusterStatus.PROVISIONING,
    ClusterStatus.RUNNING,
    ClusterStatus.RESIZING,
    ClusterStatus.RESTARTING,
)


def store_queries(compute_plane_id: str, report: contract.QueryReport) -> dict[str, Any]:
    plane = ComputePlane.objects.only("id", "organization_id").get(pk=compute_plane_id)
    gateway = Gateway.objects.filter(compute_plane_id=plane.pk).first()
    keep_text = gateway is not None and gateway.query_text_enabled
    latest = {r.query_id: r for r in report.queries}  # a record repeated in one report: the last
    named = {r.cluster_id for r in latest.values() if r.cluster_id}
    own = set(
        Cluster.objects.filter(compute_plane_id=plane.pk, pk__in=named).values_list("id", flat=True)
    )
    refused = []
    rows = []
    for record in latest.values():
        if record.cluster_id is not None and record.cluster_id not in own:
            refused.append(
                {
                    "query_id": record.query_id,
                    "reason": f"Cluster {record.cluster_id} is not on this compute plane.",
                }
            )
            continue
        rows.append(
            QueryRecord(
                organization_id=plane.organization_id,
                compute_plane_id=plane.pk,
                query_id=record.query_id,
                cluster_id=record.cluster_id,
                routing_group=record.routing_group or "",
                user=record.user or "",
                source=record.source or "",
                state=record.state,
                error_name=record.error_name or "",
                queued_ms=record.queued_ms,
                elapsed_ms=record.elapsed_ms,
                bytes_in=record.bytes_in,
                bytes_out=record.bytes_out,
                started_at=record.started_at,
                finished_at=record.finished_at,
                query_text=(record.query_text or "") if keep_text else "",
            )
        )
    with transaction.atomic():
        known = set(
            QueryRecord.objects.filter(
                compute_plane_id=plane.pk, query_id__in=[r.query_id for r in rows]
            ).values_list("query_id", flat=True)
        )
        QueryRecord.objects.bulk_create(rows, ignore_conflicts=True)
        if keep_text:
            assert gateway is not None
            expire_text(plane.pk, gateway.query_text_days)
    return {
        "report_id": report.report_id,
        "stored": len([r for r in rows if r.query_id not in known]),
        "already_stored": len([r for r in rows if r.query_id in known]),
        "refused": refused,
    }


def expire_text(compute_plane_id: str, days: int, *, now: Any = None) -> int:
    """Clear the text of the plane's queries that finished more than ``days`` ago."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return (
        QueryRecord.objects.filter(compute_plane_id=compute_plane_id, finished_at__lt=cutoff)
        .exclude(query_text="")
        .update(query_text="")
    )


def clear_text(compute_plane_id: str) -> int:
    """Query text turned off: none of the plane's stays."""
    return (
        QueryRecord.objects.filter(compute_plane_id=compute_plane_id)
        .exclude(query_text="")
        .update(query_text="")
    )


def wake_cluster(compute_plane_id: str, request: contract.WakeRequest) -> dict[str, Any]:
    """Start the cluster if it sleeps; if it is already on its way up (another replica asked
    first), say so with its operation. The row lock makes many replicas' requests one start."""
    with transaction.atomic():
        cluster = (
            Cluster.objects.select_for_update(of=("self",))
            .filter(
                pk=request.cluster_id, compute_plane_id=compute_plane_id, deleted_at__isnull=True
            )
            .first()
        )
        if cluster is None:
            raise NotFound(
                "No such cluster on this compute plane.",
                errors={"cluster_id": [f"No cluster {request.cluster_id} on this compute plane."]},
            )
        gateway = Gateway.objects.filter(compute_plane_id=compute_plane_id).first()
        wake = contract.GatewayWakeSpec.model_validate(gateway.wake if gateway else {})
        if not wake.enabled:
            raise Conflict(
                f"Cluster {cluster.name} is {cluster.status} and waking clusters on query is "
                "turned off for this compute plane's gateway."
            )
        if cluster.status in SLEEPING:
            cluster, operation = clusters.start_cluster(actor=WAKE_ACTOR, cluster=cluster)
            return {
                "cluster_id": cluster.id,
                "status": cluster.status,
                "operation": operation.id,
                "started": True,
            }
        if cluster.status in ON_ITS_WAY:
            return {
                "cluster_id": cluster.id,
                "status": cluster.status,
                "operation": cluster.operation_id,
                "started": False,
            }
        raise Conflict(
            f"Cluster {cluster.name} is {cluster.status}; it is not started for a query."
        )


def on_queries_reported(
    sender: Any, *, compute_plane_id: str, report: contract.QueryReport, **_: Any
) -> dict[str, Any]:
    return store_queries(compute_plane_id, report)


def on_wake_requested(
    sender: Any, *, compute_plane_id: str, report: contract.WakeRequest, **_: Any
) -> dict[str, Any]:
    return wake_cluster(compute_plane_id, report)
