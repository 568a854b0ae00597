"""The load a simulation replays: request arrivals, or arrival rates, per platform model.

`RequestLoad` replays requests one by one (Azure, generic traces); `RateLoad` holds step
functions of arrival rate (ServeGen's 10-minute windows, or a request trace binned with
`rates_of`). `work_profile` is the perfect knowledge the `static` and `oracle` baselines use:
per model and minute, the slot-seconds its arrivals need.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from xpool.sim.requests import Request
from xpool.sim.service import Service

MINUTE = 60.0


@dataclass(frozen=True)
class RequestLoad:
    requests: Callable[[], Iterator[Request]]  # a fresh, time-ordered stream per call
    end: float  # seconds simulated


@dataclass(frozen=True)
class RateLoad:
    series: Mapping[str, tuple[tuple[float, float], ...]]  # model -> (from t, requests/s)
    end: float
    # > 0: the steps are windows this long, and rates move linearly between their middles
    window: float = 0.0
    # model -> arrivals per `count_step` seconds from 0 (ServeGen's drawn as its generator
    # draws requests, a request trace's counted); absent: the rates only
    counts: Mapping[str, Sequence[float]] = field(default_factory=dict)
    count_step: float = 1.0

    def rate(self, model: str, t: float) -> float:
        steps = self.series.get(model, ())
        i = bisect.bisect_right(steps, (t, math.inf)) - 1
        return steps[i][1] if i >= 0 else 0.0


class RateCursor:
    """A step function read at nondecreasing times, linear between the middles of adjacent
    windows when `window` > 0 (so rates do not jump at every window's edge)."""

    __slots__ = ("i", "steps", "window")

    def __init__(self, steps: tuple[tuple[float, float], ...], window: float) -> None:
        self.steps = steps
        self.window = window
        self.i = 0

    def at(self, t: float) -> float:
        steps = self.steps
        if not steps or t < steps[0][0]:
            return 0.0
        i = self.i
        while i + 1 < len(steps) and steps[i + 1][0] <= t:
            i += 1
        self.i = i
        start, value = steps[i]
        half = self.window / 2
        if not half:
            return value
        if t < start + half and i > 0 and steps[i - 1][0] + self.window == start:
            before = steps[i - 1][1]
            return before + (value - before) * (t - start + half) / self.window
        if t > start + half and i + 1 < len(steps) and start + self.window == steps[i + 1][0]:
            after = steps[i + 1][1]
            return value + (after - value) * (t - start - half) / self.window
        return value


Load = RequestLoad | RateLoad


def rates_of(reqs: Iterable[Request], end: float, step: float = MINUTE) -> RateLoad:
    """A request trace binned into `step`-second rates, for the fluid mode."""
    counts: dict[str, dict[int, int]] = {}
    for r in reqs:
        if r.t >= end:
            break
        per = counts.setdefault(r.model, {})
        k = int(r.t // step)
        per[k] = per.get(k, 0) + 1
    bins = math.ceil(end / step)
    series = {
        model: tuple((k * step, per.get(k, 0) / step) for k in range(bins))
        for model, per in counts.items()
    }
    return RateLoad(series, end)


def work_profile(load: Load, services: Mapping[str, Service]) -> dict[str, list[float]]:
    """Per model: slot-seconds of service its arrivals need, per minute of the simulation."""
    minutes = max(1, math.ceil(load.end / MINUTE))
    out = {name: [0.0] * minutes for name in services}
    if isinstance(load, RequestLoad):
        for r in load.requests():
            if r.t >= load.end:
                break
            svc = services.get(r.model)
            if svc is not None:
                out[r.model][int(r.t // MINUTE)] += svc.duration(r.input_tokens, r.output_tokens)
        return out
    for name, svc in services.items():
        counts = load.counts.get(name)
        if counts is not None:  # the arrivals themselves, as for requests
            per = out[name]
            for k, n in enumerate(counts):
                if n:
                    per[min(int(k * load.count_step // MINUTE), minutes - 1)] += (
                        n * svc.reference_duration
                    )
            continue
        steps = load.series.get(name, ())
        for i, (start, rate) in enumerate(steps):
            stop = min(steps[i + 1][0] if i + 1 < len(steps) else load.end, load.end)
            t = max(0.0, start)
            while t < stop:
                k = int(t // MINUTE)
                upto = min(stop, (k + 1) * MINUTE)
                out[name][k] += rate * (upto - t) * svc.reference_duration
                t = upto
    return out
