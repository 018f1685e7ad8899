"""The agent's own Prometheus metrics, served inside the customer's VPC.

``python -m computeplane_agent run`` serves them on ``LAKEPLANE_METRICS_PORT`` (9464, the
Deployment's ``metrics`` port; 0 turns it off). Each :class:`AgentMetrics` has its own registry,
so several agents in one process (tests, the sandbox) do not share counters.

* ``lakeplane_agent_reconciles_total{outcome}``: passes that applied a desired state (``ok``),
  rejected one (``rejected``) or met a temporary failure (``unavailable``, ``refused``);
* ``lakeplane_agent_reconcile_seconds``: time to apply a desired state to the target;
* ``lakeplane_agent_objects_applied_total`` / ``lakeplane_agent_objects_pruned_total``;
* ``lakeplane_agent_last_successful_poll_timestamp_seconds``: when the control plane last
  answered a desired-state poll (alert on ``time() - this``);
* ``lakeplane_agent_applied_version``: the desired-state version running.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DEFAULT_METRICS_PORT = 9464


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "lakeplane_agent_reconciles",
            "Agent loop passes by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "lakeplane_agent_reconcile_seconds",
            "Time to apply a desired state to the target.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.objects_applied = Counter(
            "lakeplane_agent_objects_applied",
            "Kubernetes objects written to the target.",
            registry=self.registry,
        )
        self.objects_pruned = Counter(
            "lakeplane_agent_objects_pruned",
            "Kubernetes objects deleted from the target.",
            registry=self.registry,
        )
        self.last_successful_poll = Gauge(
            "lakeplane_agent_last_successful_poll_timestamp_seconds",
            "Unix time of the last desired-state poll the control plane answered.",
            registry=self.registry,
        )
        self.applied_version = Gauge(
            "lakeplane_agent_applied_version",
            "The desired-state version fully applied (-1: none yet).",
            registry=self.registry,
        )
        self.applied_version.set(-1)
        for outcome in ("ok", "rejected", "unavailable", "refused"):
            self.reconciles.labels(outcome)

    def serve(self, port: int, address: str = "0.0.0.0") -> int:  # noqa: S104 - the pod's port
        """Serve /metrics on ``port`` (0: any free one) from a daemon thread; returns the port."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return int(server.server_port)
