"""Trace arguments (`--trace KIND:PATH[=MODEL][*SCALE][@SHIFT]`) and the load they make.

Traces are read here (the `sim` package does no I/O): `azure` (an Azure LLM inference trace
2023 CSV), `csv` / `jsonl` (the generic format, one model column), `servegen` (a ServeGen
language model directory of `chunk-*-trace.csv`). `=MODEL` maps the trace onto a platform
model; `*SCALE` multiplies its rate (ServeGen, fluid mode) or keeps that share of its requests,
drawn with the seed (request traces, SCALE <= 1); `@SHIFT` (a duration) replays the trace
that much later, so two traces can peak at different hours: a request trace's first SHIFT is
empty, a ServeGen trace's tail wraps round to its start (SHIFT a whole number of its
10-minute windows). ServeGen traces are always simulated in fluid mode.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem
from xpool.sim.load import Load, RateLoad, RequestLoad, rates_of
from xpool.sim.requests import Request
from xpool.sim.servegen import WINDOW_S, ClientWindow, client_windows, summed_rates
from xpool.sim.servegen_counts import servegen_counts
from xpool.sim.traces import azure_requests, generic_requests

KINDS = ("azure", "servegen", "csv", "jsonl")


@dataclass(frozen=True)
class TraceArg:
    kind: str
    path: Path
    model: str | None
    scale: float
    shift: float = 0.0  # seconds later than recorded


def parse_trace(value: str, flag: str = "--trace") -> TraceArg:
    def bad(message: str) -> InputError:
        return InputError([Problem(flag, "", f"{value!r}: {message}")])

    kind, sep, rest = value.partition(":")
    if not sep or kind not in KINDS:
        raise bad(f"write KIND:PATH[=MODEL][*SCALE][@SHIFT] with KIND one of {', '.join(KINDS)}")
    rest, shift = _shift(rest, kind, bad)
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
    return TraceArg(kind, path, model, scale, shift)


def _shift(rest: str, kind: str, bad: Callable[[str], InputError]) -> tuple[str, float]:
    """`rest` without its `@SHIFT`, and the shift in seconds (0 without one)."""
    if "@" not in rest:
        return rest, 0.0
    rest, _, when = rest.rpartition("@")
    try:
        shift = parse_duration(when)
    except ValueError as exc:
        raise bad(f"shift: {exc}") from None
    if kind == "servegen" and shift % WINDOW_S:
        raise bad(f"a ServeGen trace shifts by whole {WINDOW_S:g}-second windows")
    return rest, shift


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
            if (trace.model and r.model != trace.model) or trace.shift:
                r = Request(
                    r.t + trace.shift, trace.model or r.model, r.input_tokens, r.output_tokens
                )
            yield r


def batch_trace(value: str) -> TraceArg:
    """A `--batch-trace KIND:PATH[=MODEL][@SHIFT]`: a request trace whose requests are
    submitted as a batch at their timestamps (csv, jsonl or azure; not thinned)."""
    trace = parse_trace(value, "--batch-trace")
    if trace.kind == "servegen" or trace.scale != 1.0:
        raise InputError(
            [Problem("--batch-trace", "", f"{value!r}: give a csv, jsonl or azure trace, unscaled")]
        )
    return trace


def batch_requests(traces: list[TraceArg], seed: int) -> Iterator[Request]:
    """Every request of the batch traces, in submission order."""
    return heapq.merge(*(_requests(t, seed) for t in traces), key=lambda r: r.t)


def _merged(traces: list[TraceArg], seed: int, start: float, speedup: float) -> Iterator[Request]:
    for r in heapq.merge(*(_requests(t, seed) for t in traces), key=lambda r: r.t):
        if r.t >= start:
            yield Request((r.t - start) / speedup, r.model, r.input_tokens, r.output_tokens)


Steps = tuple[tuple[float, float], ...]


def _servegen(
    trace: TraceArg, start: float, end: float | None, speedup: float
) -> tuple[Steps, list[list[ClientWindow]], dict[float, float]]:
    """The trace's rate steps in simulation seconds, its clients' windows, and where each
    window starts there (by the window's start in the trace)."""
    with contextlib.ExitStack() as stack:
        files = {
            p.name: stack.enter_context(p.open(encoding="utf-8"))
            for p in sorted(trace.path.glob("chunk-*-trace.csv"))
        }
        span = {} if trace.shift else {"start": start, "end": end}
        clients = [list(client_windows(f, name, **span)) for name, f in files.items()]
    every = list(summed_rates(clients, trace.scale * speedup))
    if trace.shift:
        selected = [
            (moved, rate, t)
            for moved, rate, t in _rotated(every, trace.shift)
            if moved + WINDOW_S > start and (end is None or moved < end)
        ]
    else:
        selected = [(t, rate, t) for t, rate in every]
    steps = tuple(((t - start) / speedup, rate) for t, rate, _ in selected)
    placed = {recorded: (t - start) / speedup for t, _, recorded in selected}
    return steps, clients, placed


def _rotated(windows: list[tuple[float, float]], shift: float) -> list[tuple[float, float, float]]:
    """(start `shift` seconds later, rate, recorded start) per window, those past the trace's
    end wrapped round to its start."""
    if not windows:
        return []
    first = windows[0][0]
    span = windows[-1][0] + WINDOW_S - first
    return sorted(((t - first + shift) % span + first, rate, t) for t, rate in windows)


def _drawn(
    clients: list[list[ClientWindow]],
    placed: dict[float, float],
    length: int,
    step: float,
    speedup: float,
    scale: float,
    seed: int,
) -> np.ndarray:
    """One ServeGen trace's arrivals per step (`servegen_counts`)."""
    counts = np.zeros(length)
    servegen_counts(clients, placed, counts, step=step, speedup=speedup, scale=scale, seed=seed)
    return counts


def build_load(
    traces: list[TraceArg],
    *,
    fluid: bool | None,
    start: float,
    duration: float | None,
    speedup: float,
    seed: int,
    tick: float = 5.0,
    run_all: Callable[[Sequence[Callable[[], np.ndarray]]], list[np.ndarray]] | None = None,
) -> Load:
    """The load of every trace, in simulation seconds from `start` of the traces;
    `run_all` draws the ServeGen traces' arrivals (independent: `adapters/forked.py` draws
    them side by side), one after the other by default."""
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
    series: dict[str, Steps] = {}
    placements = []
    spans = []
    for t in serve:
        steps, clients, placed = _servegen(t, start, end, speedup)
        assert t.model is not None
        series[t.model] = _summed(series.get(t.model, ()), steps)
        placements.append((t, clients, placed))
        if steps:
            spans.append(steps[-1][0] + WINDOW_S / speedup)
    reqs = list(_merged(other, seed, start, speedup)) if other else []
    if other:
        span = duration if duration is not None else (reqs[-1].t + 1.0 if reqs else 0.0)
        binned = rates_of(iter(reqs), span)
        for model, steps in binned.series.items():
            series[model] = _summed(series.get(model, ()), steps)
        spans.append(span)
    total = duration if duration is not None else max(spans, default=0.0)
    if total <= 0:
        raise InputError([Problem("--trace", "", "the traces hold no traffic after --start")])
    # every arrival counted per step: the tick in whole steps of about a second
    step = tick / max(1, round(tick))
    length = math.ceil(total / step)
    counts: dict[str, np.ndarray] = {}
    draws = [
        partial(_drawn, clients, placed, length, step, speedup, t.scale, seed * 1_000 + i)
        for i, (t, clients, placed) in enumerate(placements)
    ]
    drawn = run_all(draws) if run_all is not None else [draw() for draw in draws]
    for (t, _, _), arrivals in zip(placements, drawn, strict=True):
        assert t.model is not None
        if t.model in counts:
            counts[t.model] += arrivals
        else:
            counts[t.model] = arrivals
    for r in reqs:
        k = int(r.t // step)
        if k < length:
            counts.setdefault(r.model, np.zeros(length))[k] += 1
    # ServeGen's rates move between its windows' middles; binned request traces step
    window = WINDOW_S / speedup if serve and not other else 0.0
    per_step = {m: c.tolist() for m, c in counts.items()}
    return RateLoad(series, total, window=window, counts=per_step, count_step=step)


def _summed(
    a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]
) -> tuple[tuple[float, float], ...]:
    """Two rate step functions added (two traces mapped onto one model)."""
    if not a:
        return b
    times = sorted({t for t, _ in a} | {t for t, _ in b})
    both = RateLoad({"a": a, "b": b}, math.inf)
    return tuple((t, both.rate("a", t) + both.rate("b", t)) for t in times)


def traced_models(load: Load, traces: list[TraceArg]) -> list[str]:
    """The platform models the load sends requests to."""
    if isinstance(load, RateLoad):
        return sorted(load.series)
    if any(t.model is None for t in traces):
        return sorted({r.model for r in load.requests()})
    return sorted({t.model for t in traces if t.model})
