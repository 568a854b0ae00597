"""The policies a simulation compares: `static`, `hpa`, `siloed`, `pooled` (xpool's `decide`),
and two analytic references, `oracle` and `oracle-bound`.

- `static`: each model provisioned for its own peak (the busiest minute of the trace, plus its
  `demand.headroom`), clipped to `instances.min..max`, fixed for the whole run.
- `hpa`: per-model autoscaling the way a Kubernetes HPA runs it, with the platform's own
  `autoscale` rule, step, interval and stabilization (the pooled policy's settings, so the two
  differ only in what pooling adds): no tiers and no borrowing; launches take free pool
  capacity first come (models in name order), nothing is ever preempted.
- `siloed`: static partitioning by tier share: each tier may hold at most its share of each
  pool (`deserved`), and each model autoscales inside it as `hpa` does. What a platform
  without borrowing or reclaim would run.
- `pooled`: `xpool.policy.decide.decide` with the platform's tiers and autoscaling.
- `oracle`: not simulated. Per 10-minute window, each model gets the fewest instances whose
  slots cover the busiest minute's work (perfect knowledge, no queueing margin), within
  `instances.min..max`, and the pool's accelerators go to the tiers in priority order; an
  instance added for a window is launched its cold start earlier (held while it loads).
  The reference the reports' "x oracle" divides by.
- `oracle-bound`: the same without the pool, `instances.max` or cold starts: a lower bound on
  accelerator-hours no platform can reach, not a policy.

The autoscalers start warm: each model holds the capped oracle's instances of the first
window, ready, as a platform that ran before the trace began would, within the pool (and for
`siloed`, within its tier's share).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from xpool.policy.actions import Action, Drain, Launch
from xpool.policy.autoscale import autoscale
from xpool.policy.decide import decide as pooled_decide
from xpool.policy.decide import finish_drains
from xpool.policy.spec import ModelSpec, PolicySpec
from xpool.policy.state import HOLDING, LoadObs, ModelMemory, Observation
from xpool.sim.load import MINUTE
from xpool.sim.service import Service

POLICIES = ("static", "hpa", "siloed", "pooled", "oracle", "oracle-bound")
ORACLE_WINDOW = 600.0


class Controller(Protocol):
    name: str
    interval: float  # seconds between passes
    acts: bool  # False: the policy never acts, so its passes observe nothing

    def step(self, obs: Observation) -> Sequence[Action]: ...


def _instances_for(work: float, svc: Service) -> int:
    """Instances whose slots serve `work` slot-seconds within one minute."""
    return math.ceil(round(work / (MINUTE * svc.slots), 9))


def static_counts(
    profile: Mapping[str, list[float]], services: Mapping[str, Service], spec: PolicySpec
) -> dict[str, int]:
    out = {}
    for m in spec.models:
        peak = _instances_for(max(profile[m.name], default=0.0), services[m.name])
        sized = math.ceil(round(peak * (1 + services[m.name].headroom), 9))
        out[m.name] = min(m.max, max(m.min, sized))
    return out


def within_pool(
    counts: Mapping[str, int], spec: PolicySpec, *, by_tier: bool = False
) -> dict[str, int]:
    """`counts` cut to `instances.max` and to what the pools hold, tiers in priority order
    (models in spec order); `by_tier`: each tier only within its share of each pool."""
    free: dict[tuple[str, str], int] = {}
    for pool in spec.pools:
        for tier in spec.tiers:
            free[pool.name, tier.name] = tier.deserved.get(pool.name, 0) if by_tier else 0
        free[pool.name, ""] = 0 if by_tier else pool.accelerators
    out = {}
    for m in spec.models:
        key = (m.pool, m.tier if by_tier else "")
        n = min(m.max, counts.get(m.name, m.min), free[key] // m.accelerators)
        free[key] -= n * m.accelerators
        out[m.name] = n
    return out


@dataclass(frozen=True)
class OracleResult:
    accelerator_seconds: float
    busy_accelerator_seconds: float
    first: dict[str, int]  # instances per model in the first window


def oracle(
    profile: Mapping[str, list[float]],
    services: Mapping[str, Service],
    spec: PolicySpec,
    end: float,
    cold_start: Mapping[str, float] | None = None,
) -> OracleResult:
    """Accelerator-seconds of perfect per-window sizing. With `cold_start` (seconds per
    model) the capped oracle: within `instances.max` and the pools, and every instance added
    for a window held that long before it; without, the uncapped bound."""
    held = busy = 0.0
    per_window = int(ORACLE_WINDOW // MINUTE)
    windows = range(0, max(len(w) for w in profile.values()) if profile else 0, per_window)
    previous: dict[str, int] = {}
    first: dict[str, int] = {}
    for w in windows:
        wanted = {}
        for m in spec.models:
            work = profile[m.name][w : w + per_window]
            wanted[m.name] = max(
                m.min, max((_instances_for(x, services[m.name]) for x in work), default=0)
            )
        counts = wanted if cold_start is None else within_pool(wanted, spec)
        span = min(end, (w + per_window) * MINUTE) - w * MINUTE
        for m in spec.models:
            n, svc = counts[m.name], services[m.name]
            held += n * svc.accelerators * span
            # work beyond what the instances serve in a minute is not served
            work = (min(x, n * svc.slots * MINUTE) for x in profile[m.name][w : w + per_window])
            busy += sum(work) * svc.accelerators / svc.slots
            if cold_start is not None and m.name in previous:
                added = max(0, n - previous[m.name])
                held += added * services[m.name].accelerators * cold_start[m.name]
            first.setdefault(m.name, n)
        previous = counts
    return OracleResult(held, busy, first)


class Static:
    name = "static"
    acts = False

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def step(self, obs: Observation) -> Sequence[Action]:
        return ()


class Pooled:
    name = "pooled"
    acts = True

    def __init__(self, spec: PolicySpec, interval: float) -> None:
        self.spec = spec
        self.interval = interval
        self.memory: dict[str, ModelMemory] = {}

    def step(self, obs: Observation) -> Sequence[Action]:
        out = pooled_decide(self.spec, obs, self.memory)
        self.memory = out.memory
        return out.actions


class Hpa:
    """Per-model autoscaling with the pooled policy's rule and settings, first come first
    served on the free accelerators of each pool."""

    name = "hpa"
    acts = True

    def __init__(self, spec: PolicySpec, interval: float) -> None:
        self.spec = spec
        self.interval = interval
        self.memory: dict[str, ModelMemory] = {}

    def budgets(self) -> dict[tuple[str, str], int]:
        """Accelerators each (pool, tier) may hold; tier "" stands for every tier."""
        return {(p.name, ""): p.accelerators for p in self.spec.pools}

    def budget_key(self, model: ModelSpec) -> tuple[str, str]:
        return (model.pool, "")

    def step(self, obs: Observation) -> Sequence[Action]:
        spec = self.spec
        actions: list[Action] = list(finish_drains(spec, obs))
        gone = {a.uid for a in actions if hasattr(a, "uid")}
        free = self.budgets()
        for inst in obs.instances:
            model = spec.model(inst.model)
            if model is not None and inst.state in HOLDING and inst.uid not in gone:
                free[self.budget_key(model)] -= model.accelerators
        for model in sorted(spec.models, key=lambda m: m.name):
            mine = [i for i in obs.of(model.name) if i.state != "draining"]
            before = self.memory.get(model.name, ModelMemory())
            t = autoscale(
                model,
                spec.scaling,
                mine,
                obs.load.get(model.name, LoadObs(missing=("qps",))),
                before,
                obs.now,
            )
            active = [i for i in mine if i.state in ("ready", "loading")]
            self.memory[model.name] = t.memory
            if t.desired > len(active):
                key = self.budget_key(model)
                count = min(t.desired - len(active), free[key] // model.accelerators)
                if count <= 0:
                    self.memory[model.name] = before
                    continue
                free[key] -= count * model.accelerators
                actions.append(
                    Launch(
                        model.name,
                        model.version,
                        count,
                        model.accelerators,
                        model.pool,
                        model.tier,
                        t.reason,
                    )
                )
            elif t.desired < len(active):
                active.sort(key=lambda i: (i.state != "loading", -i.since))
                for inst in active[: len(active) - t.desired]:
                    actions.append(Drain(inst.uid, inst.model, model.tier, t.reason))
        return actions


class Siloed(Hpa):
    """Static partitioning by tier share: `hpa` inside each tier's share of each pool."""

    name = "siloed"

    def budgets(self) -> dict[tuple[str, str], int]:
        return {
            (p.name, t.name): t.deserved.get(p.name, 0)
            for p in self.spec.pools
            for t in self.spec.tiers
        }

    def budget_key(self, model: ModelSpec) -> tuple[str, str]:
        return (model.pool, model.tier)
