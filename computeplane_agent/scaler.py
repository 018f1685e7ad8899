"""The agent's autoscaler: sample each autoscaled cluster's coordinator, decide, apply, report.

Every ``sample_seconds`` the agent reads an autoscaled cluster's coordinator (through the
target's ``coordinator_load``), keeps the samples its longest window needs and asks the pure
:func:`computeplane_agent.autoscale.decide`. A decision that changes the worker count is applied
at once — the agent renders the worker Deployment with the new replica count, so no query waits
for a round trip to the control plane — and reported to the control plane as a
``ScalingReport``; the control plane records it, resizes the node group and publishes the new
count. Until the published desired state carries it, the agent keeps its own count (an
*override*); the control plane's answer may lower it (quota) or refuse it (then the agent goes
back to the published count). A user resize meanwhile wins: a published count that is neither
the one the override replaced nor the override itself drops it.

Only counts leave the VPC: the decision, its reason and the numbers it was made on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from computeplane_agent.autoscale import (
    AutoscalingPolicy,
    LoadSample,
    ScalingDecision,
    ScalingState,
    decide,
)
from computeplane_agent.contract import (
    AutoscalingSpec,
    ClusterSpec,
    DesiredState,
    ScalingAnswer,
    ScalingReport,
)
from computeplane_agent.render import resource_prefix
from computeplane_agent.schedules import schedule_floor
from computeplane_agent.targets.base import Target

log = logging.getLogger("computeplane_agent.scaler")

# A Presto worker joins in about a minute; sampling every 15 s sees a minute-long window in
# four samples and costs each coordinator two small GETs per sample.
SAMPLE_SECONDS = 15.0


def policy_of(spec: AutoscalingSpec) -> AutoscalingPolicy:
    return AutoscalingPolicy(
        enabled=spec.enabled,
        min_count=spec.min_count,
        max_count=spec.max_count,
        target_queued=spec.target_queued,
        target_cpu=spec.target_cpu,
        target_memory=spec.target_memory,
        scale_out_window_seconds=spec.scale_out_window_seconds,
        scale_in_idle_minutes=spec.scale_in_idle_minutes,
        scale_out_step=spec.scale_out_step,
        scale_in_step=spec.scale_in_step,
        cooldown_seconds=spec.cooldown_seconds,
        auto_suspend_minutes=spec.auto_suspend_minutes,
    )


def horizon_seconds(spec: AutoscalingSpec) -> float:
    """How far back the longest window of the policy reaches (plus one sample's slack)."""
    longest = max(
        spec.scale_out_window_seconds,
        spec.scale_in_idle_minutes * 60,
        (spec.auto_suspend_minutes or 0) * 60,
    )
    return longest + 2 * SAMPLE_SECONDS


@dataclass
class ClusterScaling:
    samples: deque[LoadSample] = field(default_factory=deque)
    last_sample_at: float | None = None
    last_change_at: float | None = None
    # The worker count the agent applied ahead of the control plane, and the published count it
    # replaced.
    override: int | None = None
    replaced: int | None = None
    # A decision the control plane has not answered yet; sent again, unchanged, until it is.
    unanswered: ScalingReport | None = None
    last_decision: ScalingDecision | None = None


class Autoscaler:
    def __init__(
        self,
        target: Target,
        *,
        agent_id: str,
        sample_seconds: float = SAMPLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.target = target
        self.agent_id = agent_id
        self.sample_seconds = sample_seconds
        self.clock = clock
        self.wall_clock = wall_clock
        self.clusters: dict[str, ClusterScaling] = {}

    @property
    def active(self) -> bool:
        return bool(self.clusters)

    def effective(self, desired: DesiredState) -> DesiredState:
        """``desired`` with the autoscaler's own counts in place of the published ones."""
        clusters = []
        for spec in desired.clusters:
            scaling = self.clusters.get(spec.id)
            if scaling is not None and scaling.override is not None:
                published = spec.workers.replicas
                if published == scaling.override or published != scaling.replaced:
                    # Caught up, or a user resized since: the published count stands.
                    scaling.override = scaling.replaced = None
                else:
                    workers = spec.workers.model_copy(update={"replicas": scaling.override})
                    spec = spec.model_copy(update={"workers": workers})
            clusters.append(spec)
        return desired.model_copy(update={"clusters": clusters})

    def tick(self, desired: DesiredState) -> list[ScalingReport]:
        """Sample the clusters that are due and decide; the reports to send now (new decisions
        and ones not answered yet). New counts take effect through :meth:`effective`."""
        now = self.clock()
        live = {
            s.id for s in desired.clusters if s.autoscaling is not None and s.state == "running"
        }
        for gone in set(self.clusters) - live:
            del self.clusters[gone]
        reports = []
        for spec in desired.clusters:
            if spec.id not in live:
                continue
            scaling = self.clusters.setdefault(spec.id, ClusterScaling())
            if scaling.unanswered is not None:
                reports.append(scaling.unanswered)
                continue  # one decision at a time per cluster
            due = scaling.last_sample_at is None or now - scaling.last_sample_at >= (
                self.sample_seconds
            )
            if due:
                report = self._sample_and_decide(spec, scaling, now)
                if report is not None:
                    reports.append(report)
        return reports

    def _sample_and_decide(
        self, spec: ClusterSpec, scaling: ClusterScaling, now: float
    ) -> ScalingReport | None:
        assert spec.autoscaling is not None
        load = self.target.coordinator_load(spec.id, f"{resource_prefix(spec.id)}-coordinator")
        scaling.last_sample_at = now
        scaling.samples.append(
            LoadSample(at=now, reachable=False)
            if load is None
            else LoadSample(
                at=now,
                reachable=True,
                queued=load.queued,
                running=load.running,
                active_workers=load.active_workers,
                cpu=load.cpu,
                memory=load.memory,
            )
        )
        oldest = now - horizon_seconds(spec.autoscaling)
        while scaling.samples and scaling.samples[0].at < oldest:
            scaling.samples.popleft()
        current = scaling.override if scaling.override is not None else spec.workers.replicas
        policy = spec.autoscaling
        state = ScalingState(
            current=current,
            last_change_at=scaling.last_change_at,
            quota=policy.worker_quota,
            schedule_floor=(
                schedule_floor(policy.schedules, self.wall_clock(), policy.time_zone)
                if policy.enabled
                else 0
            ),
        )
        decision = decide(policy_of(spec.autoscaling), list(scaling.samples), state, now)
        scaling.last_decision = decision
        if not decision.changes or decision.desired == current:
            return None
        report = ScalingReport(
            agent_id=self.agent_id,
            report_id=uuid.uuid4().hex,
            cluster_id=spec.id,
            from_count=current,
            to_count=decision.desired,
            action=decision.action,  # changes: never "none"
            reason=decision.reason,
            detail=decision.detail[:2000],
            decided_at=self.wall_clock(),
        )
        log.info(
            "cluster %s: %s %d -> %d (%s: %s)",
            spec.id,
            decision.action,
            current,
            decision.desired,
            decision.reason,
            decision.detail,
        )
        scaling.last_change_at = now
        scaling.unanswered = report
        if decision.action != "suspend":
            # A suspend stops the whole cluster: the control plane does it (the coordinator goes
            # too), so the workers stay until the desired state says stopped.
            scaling.replaced = (
                spec.workers.replicas if scaling.override is None else scaling.replaced
            )
            scaling.override = decision.desired
        return report

    def answered(self, answer: ScalingAnswer) -> None:
        scaling = self.clusters.get(answer.cluster_id)
        if scaling is None or scaling.unanswered is None:
            return
        if scaling.unanswered.report_id != answer.report_id:
            return
        suspend = scaling.unanswered.action == "suspend"
        scaling.unanswered = None
        if not answer.accepted:
            log.warning("cluster %s: decision refused: %s", answer.cluster_id, answer.message)
        if suspend or scaling.replaced is None:
            return  # a suspend reaches the pods through the desired state (state stopped)
        # The count the control plane keeps (the decision's, a lower one, or — refused — the one
        # it has, which a resize under way may not have published yet): held until published.
        scaling.override = answer.workers
