"""Rollouts inside a reconciler pass: start the ones the platform file declares, advance the
active ones from the gate's signals, push their weights to the gateways, and hand the policy
the weights it must split instances by.

The gate reads the gateway's per-attempt counter and its gate TTFT histogram (warm,
successful attempts only) from Prometheus over the current step (`policies/promql.yaml`,
`rollout:`); attempts count, not client answers, because the gateway retries a failed canary
attempt on the stable version and the client never sees it fail. The canary is sized by the
policy's last pass (`Decision.versions`): a step ends only once the instances its next weight
calls for are ready. Weights are written every pass, not only on change: a restarted gateway comes back with
the platform file's weights and is corrected within one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from xpool.adapters.prometheus import PrometheusClient, Sample
from xpool.config.models import Platform
from xpool.errors import RemoteError
from xpool.logs import get_logger
from xpool.policy.actions import Decision
from xpool.policy.canary_gate import Gate, VersionSignals
from xpool.policy.canary_stats import from_cumulative
from xpool.policy.rollout import CanaryObs, GateSignals, Rollout, advance, start
from xpool.policy.spec import ModelSpec, PolicySpec
from xpool.policy.state import Observation
from xpool.policy.versions import apportion
from xpool.reconcile.rollout_store import Rollouts, RolloutStore
from xpool.render.environment import policy_yaml

log = get_logger(__name__)


def gate_of(platform: Platform, model: str) -> Gate:
    declared = next(m for m in platform.spec.models if m.name == model).rollout
    g = declared.gate if declared else None
    if g is None:
        return Gate()
    return Gate(
        g.max_error_rate,
        g.max_ttft_ratio,
        g.ttft_slack_ms,
        g.min_requests,
        g.significance,
        g.extensions,
    )


def stable_of(spec: ModelSpec) -> str:
    return max(spec.version_weights, key=lambda vw: vw[1])[0]


class GateReader:
    """The canary's and the stable version's figures over a window, from Prometheus."""

    def __init__(self, prom: PrometheusClient | None, *, min_window: float = 60.0) -> None:
        self.prom = prom
        self.queries: dict[str, str] = policy_yaml("promql.yaml")["rollout"]
        self.min_window = min_window  # increase() needs two samples: a few scrape intervals

    def _query(self, name: str, model: str, version: str, window: str) -> list[Sample]:
        assert self.prom is not None
        expr = (
            self.queries[name]
            .replace("$MODEL", model)
            .replace("$VERSION", version)
            .replace("$WINDOW", window)
        )
        return [s for s in self.prom.query(expr) if not math.isnan(s.value)]

    def _scalar(self, name: str, model: str, version: str, window: str) -> float:
        return sum(s.value for s in self._query(name, model, version, window))

    def _version(self, model: str, version: str, window: str) -> VersionSignals:
        requests = self._scalar("requests", model, version, window)
        errors = self._scalar("errors", model, version, window)
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in self._query("ttftBuckets", model, version, window)
            if "le" in s.labels
        ]
        return VersionSignals(round(requests, 3), round(errors, 3), from_cumulative(buckets))

    def read(self, rollout: Rollout, now: float) -> GateSignals | None:
        if rollout.phase != "shifting" or rollout.step_started is None:
            return None
        if self.prom is None:
            return GateSignals(None, None, ("no Prometheus configured",))
        window = f"{math.ceil(max(now - rollout.step_started, self.min_window))}s"
        try:
            return GateSignals(
                self._version(rollout.model, rollout.canary, window),
                self._version(rollout.model, rollout.stable, window),
            )
        except RemoteError as exc:
            return GateSignals(None, None, (f"Prometheus: {exc}",))


def canary_obs(rollout: Rollout, obs: Observation, sized: Decision | None) -> CanaryObs:
    """The canary's instances; how many the policy's last pass sized it for ahead of the next
    shift, and how many its weight now calls for (the autoscaler's count of that pass split by
    the rollout's weights now: right after a shift the pass still had the old ones). None
    before a pass that knew of this rollout."""
    mine = [i for i in obs.of(rollout.model) if i.version == rollout.canary]
    failed = next((i.error or "launch failed" for i in mine if i.state == "failed"), None)
    needed = None
    if sized is not None and sized.serving:
        weights = {v: w for v, w in rollout.weights().items() if w > 0}
        needed = apportion(sum(sized.serving.values()), weights).get(rollout.canary)
    return CanaryObs(
        ready=sum(1 for i in mine if i.state == "ready"),
        loading=sum(1 for i in mine if i.state == "loading"),
        failed=failed,
        wanted=sized.versions.get(rollout.canary) if sized is not None else None,
        needed=needed,
    )


def declared_starts(platform: Platform, spec: PolicySpec, doc: Rollouts, now: float) -> None:
    """Start each rollout the file declares that has no record yet (a finished one is not
    restarted: run `xpool rollout start` to try a version again)."""
    for model in platform.spec.models:
        declared = model.rollout
        mspec = spec.model(model.name)
        if declared is None or mspec is None:
            continue
        current = doc.current.get(model.name)
        if current is not None and (current.canary == declared.to or current.active):
            continue
        stable = current.serving if current is not None else stable_of(mspec)
        if stable == declared.to:
            continue
        doc.replace(
            start(
                model.name,
                stable,
                declared.to,
                tuple(declared.steps),
                declared.interval,
                gate_of(platform, model.name),
                now,
                "declared in the platform file",
            )
        )


def applies(rollout: Rollout, spec: PolicySpec) -> bool:
    """A rollout applies while the file still has both its versions."""
    mspec = spec.model(rollout.model)
    versions = {v for v, _ in mspec.version_weights} if mspec else set()
    return rollout.stable in versions and rollout.canary in versions


def with_rollouts(spec: PolicySpec, doc: Rollouts) -> PolicySpec:
    """The policy spec with each rollout's weights and its next step's (sized for ahead)."""
    models = []
    for m in spec.models:
        r = doc.current.get(m.name)
        if r is None or not applies(r, spec):
            models.append(m)
            continue
        weights = r.weights()
        ordered = tuple((v, weights.get(v, 0.0)) for v, _ in m.version_weights)
        following = r.next_weights() if r.active else None
        ahead = tuple((v, following.get(v, 0.0)) for v, _ in m.version_weights) if following else ()
        models.append(replace(m, weights=ordered, version=r.serving, ahead=ahead))
    return replace(spec, models=tuple(models))


class RolloutController:
    def __init__(
        self,
        platform: Platform,
        store: RolloutStore,
        gate: GateReader,
        set_weights: Callable[[str, dict[str, float]], None],
        audit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.platform = platform
        self.store = store
        self.gate = gate
        self.set_weights = set_weights
        self.audit = audit

    def run(
        self,
        spec: PolicySpec,
        obs: Observation,
        *,
        dry_run: bool,
        sized: Mapping[str, Decision] | None = None,
    ) -> PolicySpec:
        """Advance every rollout one pass; returns the spec the policy should decide with.
        `sized`: each model's decision in the policy's last pass (instances per version)."""
        sized = sized or {}
        before = self.store.load()
        signals = {m: self.gate.read(r, obs.now) for m, r in before.current.items() if r.active}

        def change(doc: Rollouts) -> None:
            declared_starts(self.platform, spec, doc, obs.now)
            for model, r in list(doc.current.items()):
                if r.active and applies(r, spec):
                    doc.current[model] = advance(
                        r, obs.now, canary_obs(r, obs, sized.get(model)), signals.get(model)
                    )

        if dry_run:
            doc = self.store.load()
            change(doc)
        else:
            doc = self.store.update(change)
        for model, r in doc.current.items():
            old = before.current.get(model)
            seen = len(old.history) if old is not None and old.started == r.started else 0
            for event in r.history[seen:]:
                self._record(r, event.__dict__, planned=dry_run)
            if not dry_run and applies(r, spec):
                self.set_weights(model, r.weights())
        return with_rollouts(spec, doc)

    def _record(self, r: Rollout, event: dict[str, Any], *, planned: bool) -> None:
        log.info(
            f"rollout {r.model} {r.stable}->{r.canary}: {event['event']}: {event['reason']}",
            extra={"model": r.model, "action": f"rollout-{event['event']}", "phase": r.phase},
        )
        self.audit(
            {
                "time": event["time"],
                "action": f"rollout-{event['event']}",
                "subject": f"{r.model} {r.stable}->{r.canary}",
                "reason": event["reason"],
                "planned": planned,
                "fields": {"phase": r.phase, "step": r.step, "steps": list(r.steps)},
                "inputs": event.get("signals") or {},
                "before": {},
                "after": {"weights": r.weights()},
            }
        )
