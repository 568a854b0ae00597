"""The reconciler's own metrics (`xpool_` prefix), served by `--loop` on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from xpool.policy.actions import Decision
from xpool.policy.spec import PolicySpec
from xpool.policy.state import Observation
from xpool.reconcile.pass_result import PassResult

STATES = ("loading", "ready", "draining", "failed")


class ReconcilerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.actions = Counter(
            "xpool_reconciler_actions", "Actions taken.", ["action", "model"], registry=r
        )
        self.decisions = Counter(
            "xpool_reconciler_decisions",
            "Per-model decisions by direction.",
            ["model", "direction"],
            registry=r,
        )
        self.instances = Gauge(
            "xpool_reconciler_instances",
            "Instances by tier, model and state, as last observed.",
            ["tier", "model", "state"],
            registry=r,
        )
        self.errors = Counter(
            "xpool_reconciler_errors", "Remote failures during passes.", registry=r
        )
        self.duration = Histogram(
            "xpool_reconciler_loop_duration_seconds",
            "Seconds per observe-decide-act pass.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.leader = Gauge(
            "xpool_reconciler_leader", "1 while this process is the active reconciler.", registry=r
        )
        self.last_pass_time: float | None = None
        self.last_pass = Gauge(
            "xpool_reconciler_last_pass_timestamp_seconds", "End of the last pass.", registry=r
        )

    def observed(self, spec: PolicySpec, obs: Observation, decisions: tuple[Decision, ...]) -> None:
        for model in spec.models:
            mine = obs.of(model.name)
            for state in STATES:
                count = sum(1 for i in mine if i.state == state)
                self.instances.labels(model.tier, model.name, state).set(count)
        for d in decisions:
            direction = "up" if d.desired > d.active else "down" if d.desired < d.active else "hold"
            self.decisions.labels(d.model, direction).inc()

    def passed(self, result: PassResult) -> None:
        self.duration.observe(result.seconds)
        self.last_pass_time = result.started + result.seconds
        self.last_pass.set(self.last_pass_time)
        for record in result.done:
            self.actions.labels(record["action"], str(record["fields"].get("model") or "")).inc()
        if result.errors:
            self.errors.inc(len(result.errors))
