"""`xpool simulate FILE --trace KIND:PATH[=MODEL][*SCALE]`: replay traces against the policies.

Traces are read here (the `sim` package does no I/O): `azure` (an Azure LLM inference trace
2023 CSV), `csv` / `jsonl` (the generic format, one model column), `servegen` (a ServeGen
language model directory of `chunk-*-trace.csv`). `=MODEL` maps the trace onto a platform
model; `*SCALE` multiplies its rate (ServeGen, fluid mode) or keeps that share of its requests,
drawn with `--seed` (request traces, SCALE <= 1). ServeGen traces are always simulated in
fluid mode.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem
from xpool.sim.baselines import POLICIES
from xpool.sim.compare import Comparison, check_policies, setup, simulate
from xpool.sim.engine import Options
from xpool.sim.load import Load, RateLoad, RequestLoad, rates_of
from xpool.sim.report import figures, markdown
from xpool.sim.requests import Request
from xpool.sim.servegen import WINDOW_S, servegen_rates
from xpool.sim.traces import azure_requests, generic_requests
from xpool.validate import load_and_plan

KINDS = ("azure", "servegen", "csv", "jsonl")


@dataclass(frozen=True)
class TraceArg:
    kind: str
    path: Path
    model: str | None
    scale: float


def parse_trace(value: str) -> TraceArg:
    def bad(message: str) -> InputError:
        return InputError([Problem("--trace", "", f"{value!r}: {message}")])

    kind, sep, rest = value.partition(":")
    if not sep or kind not in KINDS:
        raise bad(f"write KIND:PATH[=MODEL][*SCALE] with KIND one of {', '.join(KINDS)}")
    scale = 1.0
    if "*" in rest:
        rest, _, factor = rest.rpartition("*")
        try:
            scale = float(factor)
        except ValueError:
            raise bad(f"scale {factor!r} is not a number") from None
        if not (scale > 0 and math.isfinite(scale)):
            raise bad("the scale must be a positive number")
    model = None
    if "=" in rest:
        rest, _, model = rest.rpartition("=")
    path = Path(rest)
    if not path.exists():
        raise bad(f"{path} does not exist")
    if kind == "servegen" and not sorted(path.glob("chunk-*-trace.csv")):
        raise bad(f"{path} holds no chunk-*-trace.csv: give a ServeGen model directory")
    if kind in ("azure", "servegen") and not model:
        raise bad("this trace names no model: append =MODEL (a model of the platform)")
    return TraceArg(kind, path, model, scale)


def _duration(flag: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError([Problem(flag, "", str(exc))]) from None


def _requests(trace: TraceArg, seed: int) -> Iterator[Request]:
    """One request trace, mapped and thinned; opens its file for as long as it is read."""
    keep = random.Random(f"{seed}:{trace.path}").random
    with trace.path.open(encoding="utf-8") as f:
        if trace.kind == "azure":
            stream = azure_requests(f, trace.model or "", trace.path.name)
        else:
            stream = generic_requests(f, trace.path.name, trace.kind)  # type: ignore[arg-type]
        for r in stream:
            if trace.scale < 1 and keep() >= trace.scale:
                continue
            if trace.model and r.model != trace.model:
                r = Request(r.t, trace.model, r.input_tokens, r.output_tokens)
            yield r


def _merged(traces: list[TraceArg], seed: int, start: float, speedup: float) -> Iterator[Request]:
    for r in heapq.merge(*(_requests(t, seed) for t in traces), key=lambda r: r.t):
        if r.t >= start:
            yield Request((r.t - start) / speedup, r.model, r.input_tokens, r.output_tokens)


def _servegen(
    trace: TraceArg, start: float, end: float | None, speedup: float
) -> tuple[tuple[float, float], ...]:
    with contextlib.ExitStack() as stack:
        files = {
            p.name: stack.enter_context(p.open(encoding="utf-8"))
            for p in sorted(trace.path.glob("chunk-*-trace.csv"))
        }
        return tuple(
            ((t - start) / speedup, rate * trace.scale * speedup)
            for t, rate in servegen_rates(files, start=start, end=end)
        )


def build_load(
    traces: list[TraceArg],
    *,
    fluid: bool | None,
    start: float,
    duration: float | None,
    speedup: float,
    seed: int,
) -> Load:
    """The load of every trace, in simulation seconds from `start` of the traces."""
    serve = [t for t in traces if t.kind == "servegen"]
    other = [t for t in traces if t.kind != "servegen"]
    if serve and fluid is False:
        raise InputError(
            [Problem("--requests", "", "ServeGen traces hold rates, not requests: use --fluid")]
        )
    for t in other:
        if t.scale > 1:
            raise InputError(
                [
                    Problem(
                        "--trace",
                        "",
                        f"{t.path}: a request trace can only be thinned (*SCALE <= 1)",
                    )
                ]
            )
    end = None if duration is None else start + duration * speedup
    if not serve and not fluid:
        span = duration
        if span is None:
            last = max((r.t for r in _merged(other, seed, start, speedup)), default=0.0)
            span = last + 1.0
        return RequestLoad(lambda: _merged(other, seed, start, speedup), span)
    series: dict[str, tuple[tuple[float, float], ...]] = {}
    spans = []
    for t in serve:
        steps = _servegen(t, start, end, speedup)
        assert t.model is not None
        series[t.model] = _summed(series.get(t.model, ()), steps)
        if steps:
            spans.append(steps[-1][0] + WINDOW_S / speedup)
    if other:
        reqs = list(_merged(other, seed, start, speedup))
        span = duration if duration is not None else (reqs[-1].t + 1.0 if reqs else 0.0)
        binned = rates_of(iter(reqs), span)
        for model, steps in binned.series.items():
            series[model] = _summed(series.get(model, ()), steps)
        spans.append(span)
    total = duration if duration is not None else max(spans, default=0.0)
    if total <= 0:
        raise InputError([Problem("--trace", "", "the traces hold no traffic after --start")])
    return RateLoad(series, total)


def _summed(
    a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]
) -> tuple[tuple[float, float], ...]:
    """Two rate step functions added (two traces mapped onto one model)."""
    if not a:
        return b
    times = sorted({t for t, _ in a} | {t for t, _ in b})
    both = RateLoad({"a": a, "b": b}, math.inf)
    return tuple((t, both.rate("a", t) + both.rate("b", t)) for t in times)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def print_table(comparison: Comparison) -> None:
    tiers = sorted({t for r in comparison.results for t in r.tiers})
    emit_table(
        f"Policies ({comparison.mode} mode)",
        [
            "POLICY",
            "ACC-HOURS",
            "VS ORACLE",
            "UTILISATION",
            *(f"{t} SLO" for t in tiers),
            "SHED",
            "SCALE UP/DOWN",
            "PREEMPTIONS",
            "WALL S",
        ],
        [
            [
                r.policy,
                f"{r.accelerator_hours:.2f}",
                (
                    f"{r.accelerator_hours / comparison.oracle_hours:.2f}x"
                    if comparison.oracle_hours
                    else "-"
                ),
                _pct(r.utilisation),
                *(
                    _pct(r.tiers[t].attainment) if t in r.tiers and r.policy != "oracle" else "-"
                    for t in tiers
                ),
                f"{r.shed:.0f}",
                f"{r.scale_ups}/{r.scale_downs}",
                r.preemptions,
                f"{r.wall_seconds:.2f}",
            ]
            for r in comparison.results
        ],
    )
    pooled = comparison.result("pooled") or comparison.results[0]
    limits = ", ".join(
        f"{t} {_pct(pooled.tiers[t].attainable_share)}" for t in tiers if t in pooled.tiers
    )
    note(f"SLO attainable at all (prefill alone within slo.ttftMs): {limits}")
    for goal, met in comparison.goals().items():
        note(f"goal {goal}: {'-' if met is None else 'met' if met else 'NOT met'}")


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--trace",
    "traces",
    multiple=True,
    required=True,
    help="KIND:PATH[=MODEL][*SCALE], KIND azure|servegen|csv|jsonl; repeatable.",
)
@click.option(
    "--policies",
    default=",".join(POLICIES),
    show_default=True,
    help="Comma-separated policies to compare.",
)
@click.option("--start", default="0s", show_default=True, help="Skip this much of the traces.")
@click.option("--duration", default=None, help="Simulate this long [default: the traces].")
@click.option("--speedup", type=float, default=1.0, show_default=True, help="Replay faster.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--interval", default="15s", show_default=True, help="Time between passes.")
@click.option("--cold-start", default="60s", show_default=True, help="Launch to ready.")
@click.option("--window", default="60s", show_default=True, help="QPS rate window.")
@click.option("--lag", default="15s", show_default=True, help="Scrape lag of the QPS.")
@click.option("--queue-timeout", default="60s", show_default=True, help="Shed after waiting.")
@click.option("--tick", default="5s", show_default=True, help="Fluid mode: time step.")
@click.option("--poisson", is_flag=True, help="Fluid mode: seeded Poisson arrivals per tick.")
@click.option(
    "--fluid/--requests",
    "fluid",
    default=None,
    help="Service mode [default: requests, fluid for ServeGen].",
)
@output_option(choices=("table", "json"))
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write report.md and PNG plots into this directory.",
)
def simulate_command(
    file: str,
    traces: tuple[str, ...],
    policies: str,
    start: str,
    duration: str | None,
    speedup: float,
    seed: int,
    interval: str,
    cold_start: str,
    window: str,
    lag: str,
    queue_timeout: str,
    tick: str,
    poisson: bool,
    fluid: bool | None,
    output: str,
    report_dir: str | None,
) -> None:
    """Replay request traces against static, HPA-like, pooled (xpool) and oracle policies."""
    if not (speedup > 0 and math.isfinite(speedup)):
        raise InputError([Problem("--speedup", "", "must be a positive number")])
    seconds = {
        flag: _duration(flag, value)
        for flag, value in (
            ("--interval", interval),
            ("--cold-start", cold_start),
            ("--window", window),
            ("--lag", lag),
            ("--queue-timeout", queue_timeout),
            ("--tick", tick),
        )
    }
    for flag in ("--interval", "--window", "--tick"):
        if not seconds[flag]:
            raise InputError([Problem(flag, "", "must be longer than 0s")])
    names = [p.strip() for p in policies.split(",") if p.strip()]
    check_policies(names)
    parsed = [parse_trace(t) for t in traces]
    loaded, plan = load_and_plan(file)
    load = build_load(
        parsed,
        fluid=fluid,
        start=_duration("--start", start) or 0.0,
        duration=_duration("--duration", duration),
        speedup=speedup,
        seed=seed,
    )
    models = sorted(
        set(load.series) if isinstance(load, RateLoad) else {t.model for t in parsed if t.model}
    )
    if isinstance(load, RequestLoad) and any(t.model is None for t in parsed):
        models = sorted({r.model for r in load.requests()})
    spec, svcs = setup(loaded.platform, plan, models)
    options = Options(
        cold_start=seconds["--cold-start"] or 0.0,
        window=seconds["--window"] or 60.0,
        lag=seconds["--lag"] or 0.0,
        queue_timeout=seconds["--queue-timeout"] or 0.0,
        tick=seconds["--tick"] or 5.0,
        poisson=poisson,
        seed=seed,
    )
    note(
        f"simulating {load.end / 3600:.2f} h of {', '.join(models)} "
        f"({'fluid' if isinstance(load, RateLoad) else 'requests'} mode)"
    )
    comparison = simulate(spec, svcs, load, names, options, seconds["--interval"] or 15.0)
    if output == "json":
        emit_data(comparison.as_dict(), "json")
    else:
        print_table(comparison)
    if report_dir is not None:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        figs = figures(comparison)
        for name, fig in figs.items():
            fig.savefig(out / f"{name}.png", dpi=110)
        (out / "report.md").write_text(markdown(comparison, list(figs)), encoding="utf-8")
        note(f"wrote {out / 'report.md'} and {len(figs)} plot(s)")
