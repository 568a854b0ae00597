"""How bursty one ServeGen client's arrivals are over a fluid tick, measured on its generator.

Fluid mode draws each tick's count with the variance request mode's arrivals would have
(`servegen.py`, `servegen_windows`). A client-window is `n` gaps of the fitted Gamma or
Weibull shape, scaled to fill the 10-minute window and rotated by a uniform phase
(`servegen._arrivals`). Its counts over a tick have an index of dispersion (variance over
mean) that tends to the gaps' squared coefficient of variation c2 only over spans that hold
the rare long gaps: for ServeGen's heavy-tailed shapes (Weibull k = 0.2: c2 = 251) a tick
holding 10 arrivals has an index near 31, not 228 as a renewal interpolation n / (1 + n) x
c2 gave, and fluid mode then drew ticks several times burstier than request replay
(ServeGen day 1, m-mid at peak: 186 against 23 measured).

So the index is measured: the generator itself (numpy, seeded) run for enough windows to
hold 5,000 arrivals, its counts binned by tick, on a grid of shapes (15% apart) and counts
(x1.5 apart), and interpolated between the grid's corners in logs. Each grid point is
measured once per process (about a millisecond); ServeGen's 14 days of the three language
models touch about a thousand.
"""

from __future__ import annotations

import functools
import math

import numpy as np

_ARRIVALS = 5_000  # arrivals measured per grid point (in at least 2 windows)
_SHAPE_STEP = math.log(1.15)
_COUNT_STEP = math.log(1.5)


def window_index(pattern: str, shape: float, count: float, ticks: int) -> float:
    """Index of dispersion of the counts over one of `ticks` equal spans of a window holding
    `count` arrivals whose gaps have this `pattern` (Gamma | Weibull) and `shape`."""
    ticks = max(1, ticks)
    if count <= 1 or ticks == 1:  # at most one arrival, in one tick of the window
        return 1.0 - 1.0 / ticks
    x = math.log(shape) / _SHAPE_STEP
    y = math.log(count) / _COUNT_STEP
    i, j = math.floor(x), math.floor(y)
    fx, fy = x - i, y - j
    logs = [[math.log(_measured(pattern, i + di, j + dj, ticks)) for dj in (0, 1)] for di in (0, 1)]
    low = logs[0][0] * (1 - fx) + logs[1][0] * fx
    high = logs[0][1] * (1 - fx) + logs[1][1] * fx
    return math.exp(low * (1 - fy) + high * fy)


@functools.cache
def _measured(pattern: str, shape_key: int, count_key: int, ticks: int) -> float:
    shape = math.exp(shape_key * _SHAPE_STEP)
    count = max(1, round(math.exp(count_key * _COUNT_STEP)))
    if count == 1:
        return 1.0 - 1.0 / ticks
    windows = max(2, math.ceil(_ARRIVALS / count))
    rng = np.random.default_rng([shape_key & 0xFFFFFFFF, count_key, ticks, pattern == "Gamma"])
    with np.errstate(under="ignore", over="ignore"):
        if pattern == "Gamma":
            gaps = rng.gamma(shape, size=(windows, count))
        else:
            gaps = rng.weibull(shape, size=(windows, count))
        ends = np.cumsum(gaps, axis=1)
    total = ends[:, -1:].copy()
    total[~(total > 0) | ~np.isfinite(total)] = 1.0  # every gap underflowed: one burst
    where = (np.nan_to_num(ends / total, nan=1.0) + rng.random((windows, 1))) % 1.0
    tick = np.minimum((where * ticks).astype(np.int64), ticks - 1)
    tick += np.arange(windows, dtype=np.int64)[:, None] * ticks
    counts = np.bincount(tick.ravel(), minlength=windows * ticks)
    mean = count / ticks
    return max(float(counts.var() / mean), 1e-6)  # logs are interpolated: never 0
