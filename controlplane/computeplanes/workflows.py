"""The compute plane's workflows: one step per reconciler, in dependency order.

``computeplane.create`` runs each reconciler's ``ensure``, then installs the agent and waits for it
to register (the plane is ``ready`` only then); ``computeplane.delete`` stops a sandbox agent and
runs the ``delete``s in reverse; ``computeplane.update``
re-runs the platform's reconcilers (EKS owns the mutable settings; the others bring an older
plane up to date; a converged one makes no mutating call).
Reconciler outcomes map onto the engine's: ``WaitFor`` → ``RetryLater`` (the task is
re-scheduled, no worker waits), ``ReconcileError`` → ``PermanentError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from computeplane_agent.targets.base import TargetError
from controlplane.cloudaccounts.aws import aws_clients
from controlplane.computeplanes.agentinstall import (
    agent_dir,
    agent_mode,
    credential_file,
    install_eks_agent,
    install_sandbox_agent,
    stop_local_agent,
)
from controlplane.computeplanes.models import AgentStatus, ComputePlane, ComputePlaneStatus
from controlplane.computeplanes.services import (
    CREATE_KIND,
    DELETE_KIND,
    REPAIR_KIND,
    UPDATE_KIND,
    plane_repaired,
)
from controlplane.core.audit import Actor
from controlplane.core.models import Operation
from controlplane.core.workflows import (
    PermanentError,
    RetryLater,
    Step,
    Workflow,
    record_on,
    register_workflow,
    step_attempts,
    target_loader,
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

M = TypeVar("M", bound=models.Model)

RECONCILERS: Sequence[Reconciler] = [*NETWORK_RECONCILERS, *PLATFORM_RECONCILERS]
# Settings a PATCH may change live in the EKS cluster's configuration.
# An update re-runs the whole platform (IAM, EKS, system nodes, Pod Identity, buckets): EKS
# owns the settings a PATCH changes, and the others bring a plane built by an older Lakeplane up
# to the current platform (e.g. the system node group); converged ones only read.
UPDATE_RECONCILERS: Sequence[Reconciler] = list(PLATFORM_RECONCILERS)
# wait_for_agent looks for a couple of seconds before re-scheduling itself: a local agent
# registers about a second after it starts, so the usual case costs no extra round trip.
IN_STEP_WAIT_SECONDS = 2.0


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


def context_for(plane: ComputePlane) -> ReconcileContext:
    return ReconcileContext(
        clients=client_factory(plane.cloud_account, plane.region, plane.organization.slug),
        owner=Ownership(org_id=plane.organization_id, compute_plane_id=plane.pk),
        spec=spec_of(plane),
        state=dict(plane.resources),
        record=lambda key, value: record_on(ComputePlane, plane.pk, key, value),
    )


_plane = target_loader(ComputePlane, "organization", "cloud_account")


def plane_resource_loader(model: type[M]) -> Callable[[Operation], M]:
    """The loader of a resource on a compute plane (cache, cluster, metastore), with what
    :func:`reconcile` needs of its plane."""
    return target_loader(model, "compute_plane__organization", "compute_plane__cloud_account")


def poll_delay(seconds: float) -> float:
    return min(seconds, float(settings.LAKEPLANE_MAX_POLL_SECONDS))


# The agent's report on what runs on a plane (clusters, caches, metastores): pods start in a
# minute or two once nodes join; 10 s polls see it soon enough without flooding the database,
# and 180 polls = 30 minutes before giving up. A deleted resource's objects are pruned on the
# agent's next loop; if the agent is gone (its plane broken) the teardown goes on after 5 minutes.
AGENT_WAIT_SECONDS = 10.0
AGENT_WAIT_POLLS = 180
AGENT_DELETE_WAIT_POLLS = 30


def wait_for_agent_again(operation: Operation, detail: str, *, gave_up: str | None) -> NoReturn:
    """How a resource's ``wait_for_agent`` step ends while the agent has not reported it done:
    after AGENT_WAIT_POLLS polls the operation fails with ``agent_timeout`` and ``gave_up`` (what
    to check), else the step runs again. ``gave_up=None`` waits on (a delete stops by itself)."""
    if gave_up is not None and step_attempts(operation, "wait_for_agent") >= AGENT_WAIT_POLLS:
        raise PermanentError("agent_timeout", gave_up)
    raise RetryLater(detail, delay=poll_delay(AGENT_WAIT_SECONDS))


def reconcile(plane: ComputePlane, call: Callable[[ReconcileContext], str]) -> str:
    """Run one reconciler call for ``plane``, mapping its outcome onto the engine's.

    Every step that reconciles AWS resources of a compute plane (its own, its clusters' node
    groups) goes through here, so waits and failures read the same everywhere.
    """
    ctx = context_for(plane)
    try:
        return call(ctx)
    except WaitFor as wait:
        raise RetryLater(wait.detail, delay=poll_delay(wait.delay)) from wait
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
            f"AWS did not answer: {unavailable}", delay=poll_delay(15)
        ) from unavailable


def _run(call: Callable[[ReconcileContext], str], operation: Operation) -> str:
    return reconcile(_plane(operation), call)


def ensure_step(reconciler: Reconciler) -> Step:
    return Step(reconciler.name, lambda operation: _run(reconciler.ensure, operation))


def delete_step(reconciler: Reconciler) -> Step:
    return Step(f"delete_{reconciler.name}", lambda op: _run(reconciler.delete, op))


def install_agent(operation: Operation) -> str:
    """Install the plane's agent: a local process (sandbox) or its manifests on EKS."""
    plane = _plane(operation)
    if agent_mode() == "sandbox":
        return install_sandbox_agent(plane)
    ctx = context_for(plane)
    try:
        return install_eks_agent(plane, ctx.clients)
    except TargetError as error:
        # The API server may not accept calls yet right after ACTIVE (or a blip): try again.
        raise RetryLater(f"the cluster's API refused the agent install: {error}") from error
    except AwsAccessDenied as denied:
        raise PermanentError(
            "role_unusable", f"Lakeplane could not act through the role: {denied}"
        ) from denied
    except AwsUnavailable as unavailable:
        raise RetryLater(
            f"AWS did not answer: {unavailable}", delay=poll_delay(15)
        ) from unavailable


def wait_for_agent(operation: Operation) -> str:
    """Done once the agent has registered (``agent_status`` connected); re-polled without holding
    a worker, a bounded number of times."""
    deadline = time.monotonic() + IN_STEP_WAIT_SECONDS
    while True:
        status = (
            ComputePlane.objects.filter(pk=operation.target_id)
            .values_list("agent_status", flat=True)
            .first()
        )
        if status == AgentStatus.CONNECTED:
            return "the agent has registered"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    polls = step_attempts(operation, "wait_for_agent")
    limit = int(settings.LAKEPLANE_AGENT_CONNECT_MAX_POLLS)
    if polls >= limit:
        hint = (
            f"see {agent_dir(operation.target_id) / 'agent.log'}"
            if agent_mode() == "sandbox"
            else "check the lakeplane-agent Deployment in the lakeplane-system namespace"
        )
        raise PermanentError(
            "agent_not_connected",
            f"The compute plane's agent did not register after {polls} checks; {hint}. "
            "Fix that and retry the operation to wait again.",
        )
    raise RetryLater(
        f"waiting for the agent to register ({polls}/{limit})",
        delay=float(settings.LAKEPLANE_AGENT_CONNECT_POLL_SECONDS),
    )


def stop_agent(operation: Operation) -> str:
    """First step of deletion: a sandbox plane's local agent stops and its files go. (On EKS the
    agent goes with the cluster.)"""
    if stop_local_agent(operation.target_id, remove=True):
        return "stopped the local agent"
    return "no local agent running"


def ensure_agent(operation: Operation) -> str:
    """Repair: (re)install the agent unless it is connected. A sandbox agent this machine runs
    is always looked at, since after a restart its process may be gone before it is marked
    stale; the install is idempotent (a live process is left alone)."""
    plane = _plane(operation)
    local = agent_mode() == "sandbox" and credential_file(plane.pk).exists()
    if plane.agent_status == AgentStatus.CONNECTED and not local:
        return "the agent is connected"
    return install_agent(operation)


def repair_workloads(operation: Operation) -> str:
    """Repair: the node groups of the plane's clusters and caches (re-created where they went
    missing, at the size each asks for), then a fresh desired state so the agent re-applies
    every cluster's objects."""
    from controlplane.caching.models import Cache, CacheStatus
    from controlplane.caching.workflows import node_group_of
    from controlplane.clusters.desired import publish_plane
    from controlplane.clusters.models import Cluster, ClusterStatus
    from controlplane.clusters.workflows import node_groups_of

    plane = _plane(operation)
    clusters = Cluster.objects.filter(
        compute_plane=plane,
        status__in=[ClusterStatus.RUNNING, ClusterStatus.STOPPED, ClusterStatus.SUSPENDED],
        deleted_at__isnull=True,
    ).order_by("id")
    groups = [group for cluster in clusters for group in node_groups_of(cluster)]
    caches = Cache.objects.filter(compute_plane=plane, status=CacheStatus.READY).order_by("id")
    groups.extend(node_group_of(cache) for cache in caches)
    for group in groups:
        reconcile(plane, group.ensure)
    with transaction.atomic():
        published = publish_plane(plane)
    return f"{len(groups)} node groups in place; desired state version {published.version}"


def check_repaired(operation: Operation) -> str:
    """Repair's last step: the same read-only inspection as the periodic check. Whatever is
    still missing fails the repair with the findings (the plane stays degraded)."""
    from controlplane.computeplanes import drift

    plane = _plane(operation)
    try:
        inspection = drift.inspect(plane)
    except AwsUnavailable as unavailable:
        raise RetryLater(f"AWS did not answer: {unavailable}", delay=poll_delay(15)) from None
    findings = [f.as_dict() for f in inspection.findings]
    ComputePlane.objects.filter(pk=plane.pk).update(
        findings=findings, last_checked_at=timezone.now()
    )
    if findings:
        raise PermanentError("drift_remains", drift.reasons(findings))
    return f"nothing missing ({inspection.aws_calls} AWS calls)"


def _set_status(status: ComputePlaneStatus, **extra: Any) -> Callable[[Operation], None]:
    def hook(operation: Operation) -> None:
        ComputePlane.objects.filter(pk=operation.target_id).update(status=status, **extra)

    return hook


def _repaired(operation: Operation) -> None:
    """The plane is ``ready`` again; what failed on it while it was broken gets its retry."""
    _set_status(ComputePlaneStatus.READY, findings=[])(operation)
    plane = ComputePlane.objects.select_related("organization", "cloud_account").get(
        pk=operation.target_id
    )
    plane_repaired.send(
        sender=ComputePlane, plane=plane, actor=Actor(user=operation.created_by, system="repair")
    )


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
        {"step": "install_agent", **PlannedAction("create", "lakeplane:agent", "agent").as_dict()}
    )
    return actions


register_workflow(
    Workflow(
        kind=CREATE_KIND,
        steps=[
            *(ensure_step(r) for r in RECONCILERS),
            Step("install_agent", install_agent),
            Step("wait_for_agent", wait_for_agent),
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
        kind=REPAIR_KIND,
        steps=[
            *(ensure_step(r) for r in RECONCILERS),
            Step("agent", ensure_agent),
            Step("workloads", repair_workloads),
            Step("check_drift", check_repaired),
        ],
        on_succeeded=_repaired,
        # The plane still runs what it ran; what is missing stays listed in its findings.
        on_failed=_set_status(ComputePlaneStatus.DEGRADED),
    )
)
register_workflow(
    Workflow(
        kind=DELETE_KIND,
        steps=[Step("stop_agent", stop_agent), *(delete_step(r) for r in reversed(RECONCILERS))],
        on_succeeded=_mark_deleted,
        on_failed=_set_status(ComputePlaneStatus.FAILED),
    )
)
