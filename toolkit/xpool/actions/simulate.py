"""`simulate`: replay traces against the static, HPA-like, pooled (xpool) and oracle policies
on a platform's pools, and optionally write a Markdown report with plots."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from xpool.actions.runtime import Runtime
from xpool.actions.simulate_traces import (
    TraceArg,
    batch_requests,
    batch_trace,
    build_load,
    parse_trace,
    traced_models,
)
from xpool.adapters.forked import forked_map
from xpool.capacity.plan import CapacityPlan
from xpool.config.durations import parse_duration
from xpool.config.models import Platform
from xpool.errors import InputError, Problem
from xpool.policy.spec import policy_spec
from xpool.resolve import resolve_platform
from xpool.sim import policy_comparison
from xpool.sim.backlog import BatchJob, BatchSpec, batch_jobs, parse_batch, trace_jobs
from xpool.sim.baselines import POLICIES
from xpool.sim.engine import Options
from xpool.sim.load import RateLoad
from xpool.sim.policy_comparison import PolicyComparison, check_policies
from xpool.sim.report import figures, markdown
from xpool.sim.service import Service

POSITIVE = ("--interval", "--window", "--tick")  # a zero step would never advance


def _seconds(flag: str, value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError([Problem(flag, "", str(exc))]) from None


@dataclass(frozen=True)
class SimulateOptions:
    file: str
    traces: tuple[str, ...]
    policies: str = ",".join(POLICIES)
    start: str = "0s"
    duration: str | None = None  # None: as long as the traces
    speedup: float = 1.0
    seed: int = 0
    interval: str = "15s"
    cold_start: str = "auto"  # auto: each model's own (sim/service.py)
    window: str = "60s"
    lag: str = "15s"
    retries: int = 2
    retry_after: str = "1s"
    tick: str = "5s"
    poisson: bool = False
    smooth: bool = False  # fluid: no drawn variability
    fluid: bool | None = None  # None: requests, fluid for ServeGen
    report_dir: str | None = None
    batches: tuple[str, ...] = ()  # --batch MODEL=N[:IN:OUT][@START]
    batch_traces: tuple[str, ...] = ()  # --batch-trace KIND:PATH[=MODEL][@SHIFT]
    batch_reserve: int = 1

    def validate(self) -> None:
        """Every flag parsed (and its trace files found) before the platform is loaded."""
        if not (self.speedup > 0 and math.isfinite(self.speedup)):
            raise InputError([Problem("--speedup", "", "must be a positive number")])
        seconds = self.seconds()
        for flag in POSITIVE:
            if not seconds[flag]:
                raise InputError([Problem(flag, "", "must be longer than 0s")])
        check_policies(self.policy_names())
        if self.retries < 0:
            raise InputError([Problem("--retries", "", "must be 0 or more")])
        self.cold_start_seconds()
        self.trace_args()
        self.start_seconds()
        self.duration_seconds()
        self.batch_specs()
        self.batch_trace_args()
        if self.batch_reserve < 0:
            raise InputError([Problem("--batch-reserve", "", "must be a whole number >= 0")])
        if self.has_batch() and self.fluid is False:
            raise InputError(
                [
                    Problem(
                        "--requests", "", "a batch backlog is simulated in fluid mode: use --fluid"
                    )
                ]
            )

    def has_batch(self) -> bool:
        return bool(self.batches or self.batch_traces)

    def batch_specs(self) -> list[BatchSpec]:
        return [parse_batch(b) for b in self.batches]

    def batch_trace_args(self) -> list[TraceArg]:
        return [batch_trace(b) for b in self.batch_traces]

    def batch_models(self) -> set[str]:
        """The models the batches name (a batch trace without =MODEL: read from it)."""
        models = {b.model for b in self.batch_specs()}
        for t in self.batch_trace_args():
            models |= {t.model} if t.model else {r.model for r in batch_requests([t], self.seed)}
        return models

    def batch_jobs(self, services: dict[str, Service]) -> tuple[BatchJob, ...]:
        jobs = batch_jobs(self.batch_specs(), services)
        jobs += trace_jobs(batch_requests(self.batch_trace_args(), self.seed), services)
        return tuple(jobs)

    def seconds(self) -> dict[str, float]:
        return {
            flag: _seconds(flag, value)
            for flag, value in (
                ("--interval", self.interval),
                ("--window", self.window),
                ("--lag", self.lag),
                ("--retry-after", self.retry_after),
                ("--tick", self.tick),
            )
        }

    def cold_start_seconds(self) -> float | None:
        """None for `auto`: each model's cold start from its weights and storage bandwidth."""
        return None if self.cold_start == "auto" else _seconds("--cold-start", self.cold_start)

    def start_seconds(self) -> float:
        return _seconds("--start", self.start)

    def duration_seconds(self) -> float | None:
        return None if self.duration is None else _seconds("--duration", self.duration)

    def policy_names(self) -> list[str]:
        return [p.strip() for p in self.policies.split(",") if p.strip()]

    def trace_args(self) -> list[TraceArg]:
        return [parse_trace(t) for t in self.traces]

    def engine_options(self, batches: tuple[BatchJob, ...] = ()) -> Options:
        seconds = self.seconds()
        return Options(
            batches=batches,
            batch_reserve=self.batch_reserve,
            cold_start=self.cold_start_seconds(),
            window=seconds["--window"],
            lag=seconds["--lag"],
            retries=self.retries,
            retry_after=seconds["--retry-after"],
            tick=seconds["--tick"],
            poisson=self.poisson,
            variability=not self.smooth,
            seed=self.seed,
        )


def simulate(options: SimulateOptions, runtime: Runtime) -> PolicyComparison:
    """Build the traces' load, run every policy on it, write --report if asked."""
    traces = options.trace_args()
    resolved = resolve_platform(options.file)
    load = build_load(
        traces,
        fluid=True if options.has_batch() else options.fluid,
        start=options.start_seconds(),
        duration=options.duration_seconds(),
        speedup=options.speedup,
        seed=options.seed,
        tick=options.seconds()["--tick"],
        run_all=forked_map,
    )
    _check_batch_models(options.batch_models(), resolved.platform, resolved.plan)
    models = sorted(set(traced_models(load, traces)) | options.batch_models())
    spec, services = policy_comparison.setup(resolved.platform, resolved.plan, models)
    batches = options.batch_jobs(services)
    runtime.log(
        f"simulating {load.end / 3600:.2f} h of {', '.join(models)} "
        f"({'fluid' if isinstance(load, RateLoad) else 'requests'} mode)"
    )
    comparison = policy_comparison.simulate(
        spec,
        services,
        load,
        options.policy_names(),
        replace(
            options.engine_options(batches),
            gateway_limit=resolved.platform.spec.gateway.max_inflight,
            tier_headroom=resolved.platform.spec.gateway.tier_headroom,
        ),
        options.seconds()["--interval"],
        forked_map,
    )
    if options.report_dir is not None:
        _write_report(comparison, Path(options.report_dir), runtime)
    return comparison


def _check_batch_models(models: set[str], platform: Platform, plan: CapacityPlan) -> None:
    placed = {m.name for m in policy_spec(platform, plan).models}
    unknown = sorted(models - placed)
    if unknown:
        raise InputError(
            [
                Problem(
                    "--batch",
                    "",
                    f"model {', '.join(unknown)} is not a placed model of the platform; "
                    f"use one of: {', '.join(sorted(placed))}",
                )
            ]
        )


def _write_report(comparison: PolicyComparison, out: Path, runtime: Runtime) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        figs = figures(comparison)
        for name, fig in figs.items():
            fig.savefig(out / f"{name}.png", dpi=110)
        (out / "report.md").write_text(markdown(comparison, list(figs)), encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem("--report", "", f"{out}: cannot write: {exc}")]) from None
    runtime.log(f"wrote {out / 'report.md'} and {len(figs)} plot(s)")
