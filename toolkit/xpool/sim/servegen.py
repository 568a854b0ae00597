"""ServeGen language traces (per-client arrival rates in 10-minute windows) as request arrivals.

ServeGen (github.com/alibaba/ServeGen, `data/language/<model>/chunk-<client>-trace.csv`) has one
row per client and window: `timestamp_s,rate_req_per_s,cv,pattern,arg1,arg2`. Its reader
(`servegen/clientpool.py`) treats an empty pattern as a window without traffic; its generator
(`servegen/construct.py`, `_sample_iats`, commit f891d11) draws ceil(rate x window) inter-arrival
times from `scipy.stats.gamma(a=arg1, scale=arg2)` or `scipy.stats.weibull_min(c=arg1,
scale=arg2)` -- arg1 is the shape, arg2 the scale -- and multiplies them so they sum to the
window. So the fitted shape sets the burstiness (Gamma CV = 1/sqrt(shape)), the rate sets the
mean gap (exactly 1/rate) and the fitted scale cancels out.

This module does the same with `random.Random` and two changes, so that windows neither lose
requests nor line up: the count is rate x window rounded stochastically (the published rates
are whole counts per window, so it is the recorded count), where ServeGen drops the arrival
that lands on the window's end; and the gaps are laid on a circle one window long and cut at a
uniform random point, so each window holds exactly its arrivals and clients' windows do not all
begin with one.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate, groupby
from operator import itemgetter

from xpool.errors import InputError, Problem
from xpool.sim.requests import Request
from xpool.sim.tokens import TokenSampler

WINDOW_S = 600.0  # ServeGen's language traces: one row per client per 10 minutes
PATTERNS = ("Gamma", "Weibull")
ROW = "timestamp_s,rate_req_per_s,cv,pattern,arg1,arg2"


@dataclass(frozen=True, slots=True)
class ClientWindow:
    start: float
    rate: float  # requests per second; 0 when the pattern is empty
    pattern: str
    shape: float
    scale: float


def _error(source: str, line: int, message: str) -> InputError:
    return InputError([Problem(where=f"{source}:{line}", path="", message=message)])


def _windows(lines: Iterable[str], source: str) -> Iterator[ClientWindow]:
    """Parsed, checked rows of one client's trace file."""
    previous = -math.inf
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 6:
            raise _error(source, number, f"expected 6 fields ({ROW}), got {len(fields)}")
        pattern = fields[3]
        try:
            start, rate, shape, scale = (float(fields[i]) for i in (0, 1, 4, 5))
        except ValueError:
            raise _error(
                source, number, "timestamp_s, rate_req_per_s, arg1 and arg2 must be numbers"
            ) from None
        if not start >= previous + WINDOW_S:
            raise _error(
                source,
                number,
                f"window {fields[0]} overlaps the one before; rows must be "
                f"{WINDOW_S:g}-second windows in time order",
            )
        previous = start
        if pattern and pattern not in PATTERNS:
            raise _error(
                source,
                number,
                f"unknown arrival pattern {pattern!r}; ServeGen uses Gamma or Weibull",
            )
        finite = all(math.isfinite(v) for v in (rate, shape, scale))
        if pattern and not (finite and rate >= 0 and shape > 0 and scale > 0):
            raise _error(
                source,
                number,
                "a window with traffic needs a rate >= 0 and a positive, "
                "finite shape (arg1) and scale (arg2)",
            )
        yield ClientWindow(start, rate if pattern else 0.0, pattern, shape, scale)


def _span(
    windows: Iterator[ClientWindow], start: float, end: float | None
) -> Iterator[ClientWindow]:
    """The windows overlapping [start, end); stops reading at `end`."""
    for w in windows:
        if end is not None and w.start >= end:
            return
        if w.start + WINDOW_S > start:
            yield w


def client_windows(
    lines: Iterable[str], source: str, *, start: float = 0.0, end: float | None = None
) -> Iterator[ClientWindow]:
    """One client's checked windows overlapping [start, end) (`source` names it in errors)."""
    return _span(_windows(lines, source), start, end)


def servegen_rates(
    clients: Mapping[str, Iterable[str]],
    *,
    start: float = 0.0,
    end: float | None = None,
    scale: float = 1.0,
) -> Iterator[tuple[float, float]]:
    """(window start, summed rate in requests/s, times `scale`) for each window overlapping
    [start, end).

    `clients` maps a name per client (the file name, used in messages) to the lines of its
    trace file; windows are whole, even where [start, end) cuts them.
    """
    return summed_rates(
        [client_windows(lines, name, start=start, end=end) for name, lines in clients.items()],
        scale,
    )


def summed_rates(
    clients: Iterable[Iterable[ClientWindow]], scale: float = 1.0
) -> Iterator[tuple[float, float]]:
    """(window start, the clients' summed rate times `scale`) per window, in time order."""
    streams = [((w.start, w.rate * scale) for w in windows) for windows in clients]
    for when, group in groupby(heapq.merge(*streams), key=itemgetter(0)):
        yield when, sum(r[1] for r in group)


def _arrivals(
    windows: Iterator[ClientWindow], seed: str, start: float, end: float | None, scale: float = 1.0
) -> Iterator[float]:
    """One client's arrival times in [start, end), nondecreasing, one window in memory at a time.

    Each window draws from its own `random.Random(f"{seed}:{window start}")` (4 us to seed), so a
    window's arrivals are the same whatever span is asked for.
    """
    for w in windows:
        if not w.pattern:
            continue
        rng = random.Random(f"{seed}:{w.start!r}")
        gamma, weibull, uniform = rng.gammavariate, rng.weibullvariate, rng.random
        expected = w.rate * scale * WINDOW_S
        n = int(expected)
        if uniform() < expected - n:
            n += 1
        if n == 0:
            continue
        if w.pattern == "Gamma":
            gaps = (gamma(w.shape, w.scale) for _ in range(n))
        else:
            gaps = (weibull(w.scale, w.shape) for _ in range(n))
        ends = array("d", accumulate(gaps))
        # Tiny shapes underflow gaps to 0.0 or subnormals (whose inverse is inf): divide by the
        # total, and a window whose gaps all underflowed is one burst.
        total = ends[-1] or 1.0
        phase = uniform() * WINDOW_S
        times = [w.start + (e / total * WINDOW_S + phase) % WINDOW_S for e in ends]
        times.sort()  # a rotated sorted list: two runs, merged in linear time
        if w.start < start or (end is not None and w.start + WINDOW_S > end):
            times = [t for t in times if t >= start and (end is None or t < end)]
        yield from times


def servegen_requests(
    clients: Mapping[str, Iterable[str]],
    model: str,
    *,
    seed: int,
    tokens: TokenSampler,
    start: float = 0.0,
    end: float | None = None,
    scale: float = 1.0,
) -> Iterator[Request]:
    """The requests of one model's clients in [start, end), merged lazily in time order.

    `clients` maps a name per client to the lines of its trace file. Use the file name, not
    its path: each client's window draws from `random.Random(f"{seed}:{name}:{window start}")`,
    so arrival times depend only on the files, the names and `seed`, and a span [start, end)
    holds exactly the arrivals the whole trace has there. Token lengths are drawn in arrival
    order from `tokens`, so they also depend on the sampler's state. `scale` multiplies every
    window's rate (each client keeps its gap distribution), as fluid mode's `*SCALE` does.

    Each request costs about 1.5 us here, and ServeGen's three language models hold 3.8 billion
    requests in 14 days: replay spans, or use `servegen_rates` for the long view.
    """
    streams = [
        _arrivals(
            client_windows(lines, name, start=start, end=end),
            f"{seed}:{name}",
            start,
            end,
            scale,
        )
        for name, lines in clients.items()
    ]
    sample = tokens.sample
    for t in heapq.merge(*streams):
        input_tokens, output_tokens = sample()
        yield Request(t, model, input_tokens, output_tokens)
