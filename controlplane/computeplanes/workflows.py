"""The compute plane's workflows: one step per reconciler, in dependency order.

``computeplane.create`` runs each reconciler's ``ensure`` and finally issues the agent's
bootstrap token; ``computeplane.delete`` runs the ``delete``s in reverse; ``computeplane.update``
re-runs the reconcilers that own mutable settings (a converged one makes no mutating call).
Reconciler outcomes map onto the engine's: ``WaitFor`` → ``RetryLater`` (the task is
re-scheduled, no worker waits), ``ReconcileError`` → ``PermanentError``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.cloudaccounts.aws import aws_clients
from controlplane.computeplanes.models import ComputePlane, ComputePlaneStatus
from controlplane.computeplanes.services import CREATE_KIND, DELETE_KIND, UPDATE_KIND
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    PermanentError,
    RetryLater,
    Step,
    Workflow,
    register_workflow,
)
from controlplane.providers.aws.credentials import (
    AwsAccessDenied,
    AwsUnavailable,
    RoleTarget,
    session_name_for,
)
from controlplane.providers.aws.reconcilers.base import (
    ComputePlaneSpec,
    Ownership,
    PlannedAction,
    ReconcileContext,
    ReconcileError,
    Reconciler,
    WaitFor,
)
from controlplane.providers.aws.reconcilers.network import NETWORK_RECONCILERS
from controlplane.providers.aws.reconcilers.platform import PLATFORM_RECONCILERS

RECONCILERS: Sequence[Reconciler] = [*NETWORK_RECONCILERS, *PLATFORM_RECONCILERS]
# Settings a PATCH may change live in the EKS cluster's configuration.
UPDATE_RECONCILERS: Sequence[Reconciler] = [r for r in RECONCILERS if r.name == "eks"]
BOOTSTRAP_TOKEN_TTL = timedelta(hours=1)


def spec_of(plane: ComputePlane) -> ComputePlaneSpec:
    return ComputePlaneSpec(
        name=plane.name,
        region=plane.region,
        vpc_cidr=plane.vpc_cidr,
        availability_zones=plane.availability_zones,
        kubernetes_version=plane.kubernetes_version,
        endpoint_access=plane.endpoint_access,  # type: ignore[arg-type]
        public_access_cidrs=tuple(plane.public_access_cidrs),
        control_plane_logging=tuple(plane.control_plane_logging),
        nat_mode=plane.nat_mode,  # type: ignore[arg-type]
        kms_key_arn=plane.kms_key_arn or None,
    )


def client_factory(account: Any, region: str, org_slug: str) -> Callable[[str], Any]:
    """boto3 clients acting as the customer's role, built once per service per step."""
    role = RoleTarget(
        account_key=account.pk,
        role_arn=account.role_arn,
        external_id=account.external_id,
        session_name=session_name_for(org_slug, "provision"),
    )
    built: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in built:
            built[service] = aws_clients().client(
                service,
                role=role,
                region=region,
                max_attempts=settings.LAKEPLANE_PROVISIONING_MAX_ATTEMPTS,
            )
        return built[service]

    return client


def _record(plane_id: str, key: str, value: Any) -> None:
    """Persist one resource id at once, in its own commit (a crash after it adopts it)."""
    with transaction.atomic():
        plane = ComputePlane.objects.select_for_update().get(pk=plane_id)
        resources = dict(plane.resources)
        if value is None:
            resources.pop(key, None)
        else:
            resources[key] = value
        plane.resources = resources
        plane.save(update_fields=["resources"])


def context_for(plane: ComputePlane) -> ReconcileContext:
    return ReconcileContext(
        clients=client_factory(plane.cloud_account, plane.region, plane.organization.slug),
        owner=Ownership(org_id=plane.organization_id, compute_plane_id=plane.pk),
        spec=spec_of(plane),
        state=dict(plane.resources),
        record=lambda key, value: _record(plane.pk, key, value),
    )


def _plane(operation: Operation) -> ComputePlane:
    return ComputePlane.objects.select_related("organization", "cloud_account").get(
        pk=operation.target_id
    )


def _poll_delay(seconds: float) -> float:
    return min(seconds, float(settings.LAKEPLANE_MAX_POLL_SECONDS))


def _run(call: Callable[[ReconcileContext], str], operation: Operation) -> str:
    ctx = context_for(_plane(operation))
    try:
        return call(ctx)
    except WaitFor as wait:
        raise RetryLater(wait.detail, delay=_poll_delay(wait.delay)) from wait
    except ReconcileError as error:
        raise PermanentError(error.code, error.message) from error
    except AwsAccessDenied as denied:
        raise PermanentError(
            "role_unusable",
            f"Lakeplane could not act through the account's role: {denied}. Verify the "
            "cloud account again.",
        ) from denied
    except AwsUnavailable as unavailable:
        raise RetryLater(
            f"AWS did not answer: {unavailable}", delay=_poll_delay(15)
        ) from unavailable


def ensure_step(reconciler: Reconciler) -> Step:
    return Step(reconciler.name, lambda operation: _run(reconciler.ensure, operation))


def delete_step(reconciler: Reconciler) -> Step:
    return Step(f"delete_{reconciler.name}", lambda op: _run(reconciler.delete, op))


def issue_bootstrap_token(operation: Operation) -> str:
    """The agent's one-time registration token (its digest only; the agent issue installs it)."""
    import hashlib

    token = secrets.token_urlsafe(32)
    ComputePlane.objects.filter(pk=operation.target_id).update(
        bootstrap_token_digest=hashlib.sha256(token.encode()).hexdigest(),
        bootstrap_token_expires_at=timezone.now() + BOOTSTRAP_TOKEN_TTL,
    )
    return "agent bootstrap token issued (installing the agent arrives with the agent)"


def _set_status(status: ComputePlaneStatus, **extra: Any) -> Callable[[Operation], None]:
    def hook(operation: Operation) -> None:
        ComputePlane.objects.filter(pk=operation.target_id).update(status=status, **extra)

    return hook


def _mark_deleted(operation: Operation) -> None:
    ComputePlane.objects.filter(pk=operation.target_id).update(
        status=ComputePlaneStatus.DELETED, deleted_at=timezone.now()
    )


def plan(plane_or_spec: ReconcileContext) -> list[dict[str, str]]:
    """Every reconciler's plan for this context, in workflow order (read-only calls)."""
    actions: list[dict[str, str]] = []
    for reconciler in RECONCILERS:
        for action in reconciler.plan(plane_or_spec):
            actions.append({"step": reconciler.name, **action.as_dict()})
    actions.append(
        {"step": "bootstrap_agent", **PlannedAction("create", "lakeplane:agent", "agent").as_dict()}
    )
    return actions


register_workflow(
    Workflow(
        kind=CREATE_KIND,
        steps=[
            *(ensure_step(r) for r in RECONCILERS),
            Step("bootstrap_agent", issue_bootstrap_token),
        ],
        on_succeeded=_set_status(ComputePlaneStatus.READY),
        on_failed=_set_status(ComputePlaneStatus.FAILED),
    )
)
register_workflow(
    Workflow(
        kind=UPDATE_KIND,
        steps=[ensure_step(r) for r in UPDATE_RECONCILERS],
        on_succeeded=_set_status(ComputePlaneStatus.READY),
        on_failed=_set_status(ComputePlaneStatus.FAILED),
    )
)
register_workflow(
    Workflow(
        kind=DELETE_KIND,
        steps=[delete_step(r) for r in reversed(RECONCILERS)],
        on_succeeded=_mark_deleted,
        on_failed=_set_status(ComputePlaneStatus.FAILED),
    )
)
