"""The agent's loop: long-poll desired state → render → apply → prune → observe → report.

``run_once`` does one pass and returns how long to wait before the next, so the loop is driven step
by step in tests and by ``run`` in production. Two kinds of failure are kept apart (as kopf does):
an unreachable control plane or target is temporary (back off, retry, leave the cluster alone);
a desired state that does not parse or render is permanent for that version (report it, keep the
last good state running, wait for a new version).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from secrets import token_urlsafe

from computeplane_agent import __version__
from computeplane_agent.catalog_sync import CatalogSync
from computeplane_agent.client import (
    ControlPlaneClient,
    ControlPlaneRefused,
    ControlPlaneUnavailable,
    MalformedDesiredState,
)
from computeplane_agent.contract import (
    WORKLOAD_NAMESPACE,
    AgentError,
    CacheSpec,
    CacheStatus,
    ClusterSpec,
    ClusterStatus,
    DesiredState,
    Heartbeat,
    MetastoreSpec,
    MetastoreStatus,
    ScalingAnswer,
    StatusReport,
    UsageReport,
    UsageRole,
    UsageSample,
)
from computeplane_agent.install import DEFAULT_IMAGE, SYSTEM_INSTANCE_TYPE
from computeplane_agent.metrics import AgentMetrics
from computeplane_agent.render import GatewayEnvironment, render_desired_state, resource_prefix
from computeplane_agent.render.alluxio import master_service_name, master_web_url
from computeplane_agent.render.gateway import NAME as GATEWAY_NAME
from computeplane_agent.render.gateway import gateway_key_secret
from computeplane_agent.render.metastore import schema_job_name
from computeplane_agent.render.objects import dns_name
from computeplane_agent.scaler import Autoscaler
from computeplane_agent.secrets import (
    Redactor,
    SecretObjects,
    SecretResolver,
    resolve_secret_objects,
)
from computeplane_agent.targets.base import (
    CacheUsage,
    ObjectRef,
    Readiness,
    Target,
    TargetError,
    content_hash,
    with_applied_hash,
)

log = logging.getLogger("computeplane_agent")

MAX_BACKOFF_SECONDS = 60.0
# Usage reports that could not be delivered are kept (and resent with the same report_id, so the
# control plane counts them once) up to a day's worth at one report a minute.
MAX_PENDING_USAGE = 1440


@dataclass
class ReconcileResult:
    applied: int = 0
    pruned: int = 0


@dataclass
class AgentState:
    known_version: int | None = None  # what we send as If-None-Match
    applied: DesiredState | None = None  # the last good state, fully applied
    pending: DesiredState | None = None  # parsed and rendered, not yet fully applied
    error: AgentError | None = None
    failures: int = 0
    usage_since: datetime | None = None
    pending_usage: deque[UsageReport] = field(default_factory=deque)
    last_heartbeat: datetime | None = None
    # What the last reconcile could not resolve: catalog id / metastore id -> message (ARN only).
    secrets: SecretObjects | None = None


class Agent:
    def __init__(
        self,
        client: ControlPlaneClient,
        target: Target,
        *,
        agent_id: str,
        poll_seconds: int = 30,
        heartbeat_seconds: float = 30.0,
        usage_seconds: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolver: SecretResolver | None = None,
        metrics: AgentMetrics | None = None,
        autoscaler: Autoscaler | None = None,
        gateway: GatewayEnvironment | None = None,
        gateway_key: bytes | None = None,
    ) -> None:
        self.client = client
        self.gateway = gateway or GatewayEnvironment(image=DEFAULT_IMAGE)
        # The replicas' shared URI-signing key. ``run`` derives it from the agent's credential so
        # a restarted agent writes the same one (queries in flight keep working); without one,
        # a random key for this process.
        self.gateway_key = gateway_key or token_urlsafe(32).encode()
        self.metrics = metrics or AgentMetrics()
        self.target = target
        self.resolver = resolver
        # Every secret value the agent resolved is scrubbed from its log records and messages.
        self.redactor = Redactor()
        log.addFilter(self.redactor)
        self.catalogs = CatalogSync(target, self.redactor)
        self._secret_values: dict[tuple[str, str | None], str] = {}
        self.agent_id = agent_id
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.usage_seconds = usage_seconds
        self.clock = clock
        self.state = AgentState()
        self.autoscaler = autoscaler or Autoscaler(target, agent_id=agent_id)
        # The document last reconciled: the applied state with the autoscaler's counts.
        self._reconciled: DesiredState | None = None

    # --- reconcile --------------------------------------------------------------------------------

    def reconcile(self, desired: DesiredState) -> ReconcileResult:
        """Make the target hold exactly the desired objects, writing only what differs.

        Secrets are resolved first; a catalog whose secret cannot be read is left out of every
        cluster (and reported failed) while everything else applies.
        """
        secrets = resolve_secret_objects(
            desired, self.resolver, self._secret_values, self.redactor, log
        )
        self.state.secrets = secrets
        rendered = render_desired_state(
            desired, unavailable_catalogs=set(secrets.catalog_failures), gateway=self.gateway
        )
        if desired.gateway is not None and desired.gateway.enabled:
            rendered.append(gateway_key_secret(self.gateway_key))
        started = time.perf_counter()
        objects = [with_applied_hash(o) for o in [*rendered, *secrets.objects]]
        wanted = {ObjectRef.of(o): o for o in objects}
        current = {m.ref: m.applied_hash for m in self.target.list_managed()}
        changed = [o for ref, o in wanted.items() if current.get(ref) != content_hash(o)]
        self._reconciled = desired
        result = ReconcileResult()
        if changed:
            self.target.apply(changed)
            result.applied = len(changed)
        for ref in sorted(set(current) - set(wanted)):
            self.target.delete(ref)
            result.pruned += 1
        self.metrics.reconcile_seconds.observe(time.perf_counter() - started)
        self.metrics.objects_applied.inc(result.applied)
        self.metrics.objects_pruned.inc(result.pruned)
        return result

    # --- observe ----------------------------------------------------------------------------------

    def observe(self) -> list[ClusterStatus]:
        applied = self.state.applied
        if applied is None:
            return []
        now = self.clock()
        return [self._cluster_status(applied, cluster, now) for cluster in applied.clusters]

    def observe_metastores(self) -> list[MetastoreStatus]:
        applied = self.state.applied
        if applied is None:
            return []
        now = self.clock()
        return [self._metastore_status(m, now) for m in applied.metastores]

    def observe_caches(self) -> list[CacheStatus]:
        applied = self.state.applied
        if applied is None:
            return []
        now = self.clock()
        return [self._cache_status(c, now) for c in applied.caches]

    def _workload(self, kind: str, name: str) -> Readiness:
        api = "batch/v1" if kind == "Job" else "apps/v1"
        return self.target.readiness(ObjectRef(api, kind, WORKLOAD_NAMESPACE, name))

    def _metastore_status(self, spec: MetastoreSpec, now: datetime) -> MetastoreStatus:
        deployment = self._workload("Deployment", dns_name(spec.id))
        schema = self._workload("Job", schema_job_name(spec))
        failure = self.state.secrets.metastore_failures.get(spec.id) if self.state.secrets else None
        message = failure or schema.message or deployment.message
        ready = deployment.ready_replicas
        if not deployment.exists:
            phase = "pending"
        elif failure or schema.message:
            phase = "failed"
        elif schema.ready and deployment.ready and ready >= spec.replicas:
            phase = "running"
        elif schema.ready and ready > 0:
            phase = "degraded"
        else:
            phase = "starting"
        return MetastoreStatus(
            id=spec.id,
            phase=phase,
            replicas_ready=min(ready, spec.replicas),
            schema_ready=schema.ready,
            message=self.redactor.redact(message)[:2000] if message else None,
            observed_at=now,
        )

    def _cache_status(self, spec: CacheSpec, now: datetime) -> CacheStatus:
        master = self._workload("StatefulSet", master_service_name(spec.id))
        workers = self._workload("StatefulSet", f"{dns_name(spec.id)}-worker")
        ready_workers = min(workers.ready_replicas, spec.workers)
        master_ready = master.ready and master.ready_replicas > 0
        usage = self.target.cache_usage(spec.id, master_web_url(spec.id))
        if usage is None:
            # Nothing to ask (sandbox) or the master did not answer: what the spec provides.
            capacity = spec.workers * spec.size_gb_per_worker * 1024**3
            usage = CacheUsage(bytes_used=0, bytes_capacity=capacity)
        message = master.message or workers.message
        if not master.exists:
            phase = "pending"
        elif master_ready and ready_workers >= spec.workers:
            phase = "running"
        elif master_ready and ready_workers > 0:
            phase = "degraded"
        elif message:
            phase = "failed"
        else:
            phase = "starting"
        return CacheStatus(
            id=spec.id,
            phase=phase,
            master_ready=master_ready,
            workers_ready=ready_workers,
            workers_desired=spec.workers,
            bytes_used=min(usage.bytes_used, 2**62),
            bytes_capacity=min(usage.bytes_capacity, 2**62),
            hit_ratio=usage.hit_ratio,
            message=message[:2000] if message else None,
            observed_at=now,
        )

    def _deployment(self, cluster: ClusterSpec, component: str) -> ObjectRef:
        name = f"{resource_prefix(cluster.id)}-{component}"
        return ObjectRef("apps/v1", "Deployment", WORKLOAD_NAMESPACE, name)

    def _cluster_status(
        self, desired: DesiredState, cluster: ClusterSpec, now: datetime
    ) -> ClusterStatus:
        coordinator = self.target.readiness(self._deployment(cluster, "coordinator"))
        workers = self.target.readiness(self._deployment(cluster, "worker"))
        running = cluster.state == "running"
        desired_workers = cluster.workers.replicas if running else 0
        ready_workers = workers.ready_replicas
        coordinator_ready = coordinator.ready and coordinator.ready_replicas > 0
        message = coordinator.message or workers.message
        if not coordinator.exists:
            phase = "pending"
        elif not running:
            phase = "stopped" if not coordinator_ready and ready_workers == 0 else "stopping"
        elif coordinator_ready and ready_workers >= desired_workers and workers.ready:
            phase = "running"
        elif message:
            phase = "failed" if not coordinator_ready else "degraded"
        else:
            phase = "starting"
        rolled_out = running and coordinator.ready and workers.ready
        catalogs = self.catalogs.statuses(
            desired, cluster, self.state.secrets, rolled_out=rolled_out
        )
        return ClusterStatus(
            id=cluster.id,
            phase=phase,
            coordinator_ready=coordinator_ready,
            workers_ready=min(ready_workers, desired_workers),
            workers_desired=desired_workers,
            catalogs=catalogs,
            message=message[:2000] if message else None,
            observed_at=now,
        )

    # --- one pass ---------------------------------------------------------------------------------

    def _backoff(self) -> float:
        self.state.failures += 1
        base = min(MAX_BACKOFF_SECONDS, 2.0 ** min(self.state.failures, 6))
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def run_once(self) -> float:
        """One pass of the loop; returns the seconds to wait before the next."""
        state = self.state
        try:
            if state.pending is None:
                try:
                    fresh = self.client.desired_state(state.known_version, self._poll_wait())
                except MalformedDesiredState as exc:
                    self.metrics.last_successful_poll.set_to_current_time()
                    self._reject(exc.version, "invalid_desired_state", str(exc))
                    fresh = None
                else:
                    self.metrics.last_successful_poll.set_to_current_time()
                if fresh is not None:
                    self._accept(fresh)
            if state.pending is not None:
                result = self.reconcile(self.autoscaler.effective(state.pending))
                log.info("applied version %s: %s", state.pending.version, result)
                state.applied, state.pending = state.pending, None
                self.metrics.applied_version.set(state.applied.version)
                self.metrics.reconciles.labels("ok").inc()
            if state.applied is not None:
                # Every pass: a Trino coordinator that just became ready gets its catalogs.
                self.catalogs.sync(state.applied, state.secrets)
                self._autoscale(state.applied)
            self._report()
        except (ControlPlaneUnavailable, TargetError) as exc:
            # Leave the cluster exactly as it is; try again later.
            log.warning("temporary failure, backing off: %s", exc)
            self.metrics.reconciles.labels("unavailable").inc()
            return self._backoff()
        except ControlPlaneRefused as exc:
            log.error("control plane refused the agent: %s", exc)
            self.metrics.reconciles.labels("refused").inc()
            return self._backoff()
        state.failures = 0
        return 0.0

    def _poll_wait(self) -> int:
        """The long poll's wait: short enough that autoscaled clusters are sampled on time."""
        if self.autoscaler.active:
            return min(self.poll_seconds, max(int(self.autoscaler.sample_seconds), 1))
        return self.poll_seconds

    def _autoscale(self, applied: DesiredState) -> None:
        """Sample and decide; apply new counts to the worker Deployments at once, then report
        each decision (the answer may lower or refuse it: applied again)."""
        reports = self.autoscaler.tick(applied)
        self._reconcile_counts(applied)
        for report in reports:
            try:
                answer = self.client.scaling(report)
            except ControlPlaneRefused as exc:
                # Resending the same document cannot help: drop the decision.
                answer = ScalingAnswer(
                    report_id=report.report_id,
                    cluster_id=report.cluster_id,
                    accepted=False,
                    workers=report.from_count,
                    message=str(exc)[:2000],
                )
            self.autoscaler.answered(answer)
        if reports:
            self._reconcile_counts(applied)

    def _reconcile_counts(self, applied: DesiredState) -> None:
        effective = self.autoscaler.effective(applied)
        if effective != self._reconciled:
            self.reconcile(effective)

    def _accept(self, fresh: DesiredState) -> None:
        state = self.state
        state.known_version = fresh.version
        try:
            render_desired_state(fresh, gateway=self.gateway)  # fail before touching the target
        except ValueError as exc:
            self._reject(fresh.version, "render_failed", str(exc))
            return
        state.pending = fresh
        state.error = None

    def _reject(self, version: int | None, code: str, message: str) -> None:
        log.error("desired state %s rejected (%s): %s", version, code, message)
        self.metrics.reconciles.labels("rejected").inc()
        if version is not None:
            # Do not fetch the same bad version again; a fixed one gets a new version.
            self.state.known_version = version
        message = self.redactor.redact(message)
        self.state.error = AgentError(code=code, message=message[:2000], version=version)

    def _report(self) -> None:
        state = self.state
        now = self.clock()
        self.client.status(
            StatusReport(
                agent_id=self.agent_id,
                report_id=uuid.uuid4().hex,
                applied_version=state.applied.version if state.applied else None,
                clusters=self.observe(),
                metastores=self.observe_metastores(),
                caches=self.observe_caches(),
                error=state.error,
                sent_at=now,
            )
        )
        if (
            state.last_heartbeat is None
            or (now - state.last_heartbeat).total_seconds() >= self.heartbeat_seconds
        ):
            self.client.heartbeat(
                Heartbeat(
                    agent_id=self.agent_id,
                    agent_version=__version__,
                    sent_at=now,
                    applied_version=state.applied.version if state.applied else None,
                )
            )
            state.last_heartbeat = now
        self._report_usage(now)

    def _usage_samples(self, applied: DesiredState, seconds: int) -> list[UsageSample]:
        """What ran, by role: each cluster's coordinator and ready workers, each cache's ready
        workers on its own node group, and each managed metastore's ready replicas on the
        system nodes, and the gateway's ready replicas. Counted from readiness, never from what
        was asked for."""
        samples: list[UsageSample] = []

        def ran(role: UsageRole, instance_type: str, nodes: int, **subject: str) -> None:
            if nodes:
                samples.append(
                    UsageSample(
                        role=role,
                        instance_type=instance_type,
                        nodes=nodes,
                        seconds=seconds,
                        **subject,
                    )
                )

        for status, cluster in zip(self.observe(), applied.clusters, strict=True):
            if status.coordinator_ready:
                ran("coordinator", cluster.coordinator.instance_type, 1, cluster_id=cluster.id)
            ran(
                "worker", cluster.workers.instance_type, status.workers_ready, cluster_id=cluster.id
            )
        for cache_status, cache in zip(self.observe_caches(), applied.caches, strict=True):
            ran("cache", cache.worker_instance_type, cache_status.workers_ready, cache_id=cache.id)
        for ms in self.observe_metastores():
            ran("metastore", SYSTEM_INSTANCE_TYPE, ms.replicas_ready, metastore_id=ms.id)
        if applied.gateway is not None and applied.gateway.enabled:
            # The gateway's replicas run on the system nodes; one gateway per plane.
            gateway = self._workload("Deployment", GATEWAY_NAME)
            ran(
                "gateway",
                SYSTEM_INSTANCE_TYPE,
                min(gateway.ready_replicas, applied.gateway.replicas),
            )
        return samples

    def _report_usage(self, now: datetime) -> None:
        state = self.state
        if state.usage_since is None:
            state.usage_since = now
        elapsed = int((now - state.usage_since).total_seconds())
        if elapsed >= self.usage_seconds and state.applied is not None:
            samples = self._usage_samples(state.applied, elapsed)
            state.pending_usage.append(
                UsageReport(
                    agent_id=self.agent_id,
                    report_id=uuid.uuid4().hex,
                    period_start=state.usage_since,
                    period_end=now,
                    samples=samples,
                )
            )
            while len(state.pending_usage) > MAX_PENDING_USAGE:
                state.pending_usage.popleft()
            state.usage_since = now
        while state.pending_usage:
            self.client.usage(state.pending_usage[0])  # same report_id on every retry
            state.pending_usage.popleft()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self.run_once()
            if delay:
                stop.wait(delay)
