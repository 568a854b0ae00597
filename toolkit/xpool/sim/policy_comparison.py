"""Run several policies over one load on one platform, and the oracle beside them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from xpool.capacity.plan import CapacityPlan
from xpool.config.models import Platform
from xpool.errors import InputError
from xpool.policy.spec import PolicySpec, policy_spec
from xpool.sim.baselines import (
    POLICIES,
    Controller,
    Hpa,
    Pooled,
    Siloed,
    Static,
    oracle,
    static_counts,
    within_pool,
)
from xpool.sim.engine import Options, run_fluid, run_requests
from xpool.sim.load import Load, RequestLoad, work_profile
from xpool.sim.results import PolicyResult
from xpool.sim.service import Service, services

GOALS = (
    "pooled utilisation >= 70%",
    "pooled P0 SLO attainment >= 99.5%",
    "pooled accelerator-hours <= 0.6 x static",
    "pooled accelerator-hours <= 1.25 x oracle (capped)",
)


@dataclass(frozen=True)
class PolicyComparison:
    mode: str  # "requests" | "fluid"
    results: tuple[PolicyResult, ...]
    oracle_hours: float | None

    def result(self, policy: str) -> PolicyResult | None:
        return next((r for r in self.results if r.policy == policy), None)

    def goals(self) -> dict[str, bool | None]:
        """The targets the simulator reports against; printed, never asserted."""
        pooled, static = self.result("pooled"), self.result("static")
        if pooled is None:
            return {}
        util = pooled.utilisation
        p0 = pooled.tiers.get("P0")
        hours = pooled.accelerator_hours
        return {
            GOALS[0]: None if util is None else util >= 0.7,
            GOALS[1]: None if p0 is None or p0.attainment is None else p0.attainment >= 0.995,
            GOALS[2]: None if static is None else hours <= 0.6 * static.accelerator_hours,
            GOALS[3]: None if not self.oracle_hours else hours <= 1.25 * self.oracle_hours,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "policies": [r.as_dict(self.oracle_hours) for r in self.results],
            "goals": self.goals(),
        }


def oracle_result(
    name: str, oracle_seconds: float, busy_seconds: float, span: float, owned: float = 0.0
) -> PolicyResult:
    """An oracle's figures; `owned`: the pools' accelerators (it serves no batch)."""
    return PolicyResult(
        name,
        span,
        accelerator_seconds=oracle_seconds,
        busy_accelerator_seconds=busy_seconds,
        owned_accelerator_seconds=owned * span,
    )


def check_policies(policies: Sequence[str]) -> None:
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise InputError(
            f"--policies: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(POLICIES)}"
        )


def simulate(
    spec: PolicySpec,
    svcs: Mapping[str, Service],
    load: Load,
    policies: Sequence[str],
    options: Options,
    interval: float,
    run_all: RunAll | None = None,
) -> PolicyComparison:
    """Every policy over `load`; `run_all` runs the policies' replays (independent of each
    other: the CLI runs them on every core, `adapters/forked.py`), one after the other by
    default."""
    check_policies(policies)
    started = time.perf_counter()
    profile = work_profile(load, svcs)
    cold = {
        m: s.cold_start if options.cold_start is None else options.cold_start
        for m, s in svcs.items()
    }
    oracles = {
        "oracle": oracle(profile, svcs, spec, load.end, cold),
        "oracle-bound": oracle(profile, svcs, spec, load.end),
    }
    best = oracles["oracle"]
    profile_seconds = time.perf_counter() - started
    run = run_requests if isinstance(load, RequestLoad) else run_fluid
    replays: list[tuple[str, Callable[[], PolicyResult]]] = []
    for name in policies:
        if name in oracles:
            continue
        controller: Controller
        if name == "static":
            controller = Static(interval)
            initial = static_counts(profile, svcs, spec)
        elif name == "siloed":
            controller = Siloed(spec, interval)
            initial = within_pool(best.first, spec, by_tier=True)
        else:
            controller = Hpa(spec, interval) if name == "hpa" else Pooled(spec, interval)
            initial = within_pool(best.first, spec)
        replay = partial(run, spec, svcs, load, controller, initial, options)
        replays.append((name, replay))  # type: ignore[arg-type]
    # the slowest first, so that side by side the last to start is a short one
    order = sorted(range(len(replays)), key=lambda i: SLOWEST_FIRST.index(replays[i][0]))
    ran = (run_all or _one_by_one)([replays[i][1] for i in order])
    done = {replays[i][0]: result for i, result in zip(order, ran, strict=True)}
    results = []
    for name in policies:
        if name in oracles:
            o = oracles[name]
            r = oracle_result(
                name, o.accelerator_seconds, o.busy_accelerator_seconds, load.end, owned(spec)
            )
            r.wall_seconds = profile_seconds
            results.append(r)
        else:
            results.append(done[name])
    mode = "requests" if isinstance(load, RequestLoad) else "fluid"
    return PolicyComparison(mode, tuple(results), best.accelerator_seconds / 3600 or None)


RunAll = Callable[[Sequence[Callable[[], PolicyResult]]], list[PolicyResult]]
SLOWEST_FIRST = ("pooled", "siloed", "hpa", "static")  # measured: docs/simulation.md, "Speed"


def _one_by_one(replays: Sequence[Callable[[], PolicyResult]]) -> list[PolicyResult]:
    return [replay() for replay in replays]


def owned(spec: PolicySpec) -> int:
    """Accelerators of the pools the simulated models run on: what owned utilisation is over."""
    pools = {m.pool for m in spec.models}
    return sum(p.accelerators for p in spec.pools if p.name in pools)


def setup(
    platform: Platform, plan: CapacityPlan, models: Sequence[str]
) -> tuple[PolicySpec, dict[str, Service]]:
    """The policy's view and the service model of the traced `models` only.

    Pools and tier shares stay the platform's; models without traffic are left out, since
    they would only hold their `instances.min` in every policy alike.
    """
    full = policy_spec(platform, plan)
    missing = [m for m in models if full.model(m) is None]
    if missing:
        known = ", ".join(m.name for m in full.models)
        raise InputError(
            f"--trace: model {', '.join(missing)} is not a placed model of the platform; "
            f"map traces onto one of: {known}"
        )
    spec = replace(full, models=tuple(m for m in full.models if m.name in models))
    return spec, services(platform, plan, spec)
