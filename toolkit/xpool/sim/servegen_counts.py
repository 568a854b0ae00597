"""ServeGen arrivals counted per step, for fluid mode: the request generator, binned.

Fluid mode cannot replay ServeGen's 14 days request by request in Python, but it needs their
burstiness: ServeGen's clients are heavy-tailed (Weibull shapes near 0.2, gap c2 in the
hundreds), their bursts fill a model's idle slots at once and last longer than a tick. A
variance per tick does not carry that: drawing each tick independently with the right
variance still left fluid mode half the refusals request replay had on day 1, because the
bursts' persistence across ticks was lost (docs/simulation.md, "Fluid vs requests").

So the counts are drawn as `servegen.servegen_requests` draws arrivals (each window's count
rounded stochastically, its gaps of the fitted Gamma or Weibull shape scaled to fill the
window, rotated by a uniform phase), in numpy, and only their counts per step are kept:
the same process, its own random stream, and no per-request cost in Python (about 85 ns an
arrival: 5 s for m-large's 59 million over 14 days at the benchmark's rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from xpool.sim.servegen import WINDOW_S, ClientWindow


def servegen_counts(
    clients: Iterable[Iterable[ClientWindow]],
    placed: Mapping[float, float],
    counts: np.ndarray,
    *,
    step: float,
    speedup: float,
    scale: float,
    seed: int,
) -> None:
    """Add to `counts` (arrivals per `step` simulation seconds) the arrivals of every
    client's windows whose start is a key of `placed`, each at its value (the window's
    start in simulation seconds; a window lasts WINDOW_S / speedup there), rates times
    `scale`."""
    rng = np.random.default_rng(seed)
    width = WINDOW_S / speedup
    bins = int(np.ceil(width / step)) + 1
    length = len(counts)
    for windows in clients:
        for w in windows:
            where = placed.get(w.start)
            if where is None or not w.pattern:
                continue
            expected = w.rate * scale * WINDOW_S
            n = int(expected)
            if rng.random() < expected - n:
                n += 1
            if n == 0:
                continue
            with np.errstate(under="ignore", over="ignore", invalid="ignore"):
                if w.pattern == "Gamma":
                    at = rng.gamma(w.shape, size=n)
                else:
                    at = rng.weibull(w.shape, size=n)
                np.cumsum(at, out=at)
                total = at[-1]
                inverse = 1 / total if total > 0 else np.inf
            if np.isfinite(inverse) and inverse > 0:
                at *= inverse  # the gaps fill the window...
            else:  # tiny shapes underflow every gap (or overflow the sum): one burst
                at[:] = 1.0
            at += rng.random()  # ...rotated by a uniform phase
            np.subtract(at, 1.0, out=at, where=at >= 1.0)
            first = int(where // step)
            at *= width / step
            at += (where - first * step) / step
            local = np.bincount(at.astype(np.int64), minlength=bins)
            lo, hi = max(first, 0), min(first + bins, length)
            if lo < hi:
                counts[lo:hi] += local[lo - first : hi - first]
