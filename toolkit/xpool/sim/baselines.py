"""The policies a simulation compares: `static`, `hpa`, `pooled` (xpool's `decide`), `oracle`.

- `static`: each model provisioned for its own peak (the busiest minute of the trace, plus its
  `demand.headroom`), clipped to `instances.min..max`, fixed for the whole run.
- `hpa`: per-model autoscaling the way a Kubernetes HPA runs it: the same `autoscale` rule
  with a 15 s sync, a 300 s scale-down window and up to 4 instances per step (HPA's default
  scale-up policy), no tiers and no borrowing; launches take free pool capacity first come
  (models in name order), nothing is ever preempted.
- `pooled`: `xpool.policy.decide.decide` with the platform's tiers and autoscaling.
- `oracle`: not simulated. Per 10-minute window, each model gets the fewest instances whose
  slots cover the busiest minute's work (perfect knowledge, no cold start, no queueing
  margin), at least `instances.min`. A lower bound on accelerator-hours, not a real policy.

The autoscalers start warm: each model holds the oracle's instances of the first window,
ready, as a platform that ran before the trace began would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from xpool.policy.actions import Action, Drain, Launch
from xpool.policy.autoscale import autoscale
from xpool.policy.decide import decide as pooled_decide
from xpool.policy.decide import finish_drains
from xpool.policy.spec import PolicySpec
from xpool.policy.state import HOLDING, LoadObs, ModelMemory, Observation
from xpool.sim.load import MINUTE
from xpool.sim.service import Service

POLICIES = ("static", "hpa", "pooled", "oracle")
ORACLE_WINDOW = 600.0


class Controller(Protocol):
    name: str
    interval: float  # seconds between passes

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
) -> OracleResult:
    held = busy = 0.0
    first: dict[str, int] = {}
    per_window = int(ORACLE_WINDOW // MINUTE)
    for m in spec.models:
        svc, work = services[m.name], profile[m.name]
        busy += sum(work) * svc.accelerators / svc.slots
        for w in range(0, len(work), per_window):
            n = max(m.min, max(_instances_for(x, svc) for x in work[w : w + per_window]))
            span = min(end, (w + per_window) * MINUTE) - w * MINUTE
            held += n * svc.accelerators * span
            first.setdefault(m.name, n)
    return OracleResult(held, busy, first)


class Static:
    name = "static"

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def step(self, obs: Observation) -> Sequence[Action]:
        return ()


class Pooled:
    name = "pooled"

    def __init__(self, spec: PolicySpec, interval: float) -> None:
        self.spec = spec
        self.interval = interval
        self.memory: dict[str, ModelMemory] = {}

    def step(self, obs: Observation) -> Sequence[Action]:
        out = pooled_decide(self.spec, obs, self.memory)
        self.memory = out.memory
        return out.actions


class Hpa:
    name = "hpa"
    interval = 15.0

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self.scaling = replace(spec.scaling, interval=15.0, stabilization=300.0, step=4)
        self.memory: dict[str, ModelMemory] = {}

    def step(self, obs: Observation) -> Sequence[Action]:
        spec = self.spec
        actions: list[Action] = list(finish_drains(spec, obs))
        gone = {a.uid for a in actions if hasattr(a, "uid")}
        free = {p.name: p.accelerators for p in spec.pools}
        for inst in obs.instances:
            model = spec.model(inst.model)
            if model is not None and inst.state in HOLDING and inst.uid not in gone:
                free[model.pool] -= model.accelerators
        for model in sorted(spec.models, key=lambda m: m.name):
            mine = [i for i in obs.of(model.name) if i.state != "draining"]
            before = self.memory.get(model.name, ModelMemory())
            t = autoscale(
                model,
                self.scaling,
                mine,
                obs.load.get(model.name, LoadObs(missing=("qps",))),
                before,
                obs.now,
            )
            active = [i for i in mine if i.state in ("ready", "loading")]
            self.memory[model.name] = t.memory
            if t.desired > len(active):
                count = min(t.desired - len(active), free[model.pool] // model.accelerators)
                if count <= 0:
                    self.memory[model.name] = before
                    continue
                free[model.pool] -= count * model.accelerators
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
