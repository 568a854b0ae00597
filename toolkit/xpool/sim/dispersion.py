"""Arrival variability as the reconciler reads it (`modelArrivalCv2` in policies/promql.yaml).

The gateway's request counter, differenced 30 s apart over the last 10 minutes, gives 20
counts; their variance over their mean (the index of dispersion) estimates the squared
coefficient of variation of the gaps between arrivals: 0 for evenly spaced arrivals, 1 for
Poisson ones, more for bursts. The simulator keeps the same 30 s counts per model.
"""

from __future__ import annotations

import math
from collections import deque

BIN = 30.0  # seconds per count
BINS = 20  # counts per estimate (10 minutes)


class ArrivalCounts:
    """One model's arrivals per 30 s bin, the last 10 minutes of them."""

    __slots__ = ("_bins",)

    def __init__(self) -> None:
        self._bins: deque[list[float]] = deque()  # [bin index, arrivals]

    def add(self, t: float, count: float) -> None:
        k = math.floor(t / BIN)
        bins = self._bins
        if bins and bins[-1][0] == k:
            bins[-1][1] += count
        else:
            bins.append([k, count])

    def cv2(self, upto: float) -> float | None:
        """Index of dispersion of the last `BINS` whole bins before `upto`; None without
        arrivals (the reconciler then has no series, and the policy assumes Poisson)."""
        end = math.floor(upto / BIN)  # bins before this one are complete
        start = end - BINS
        bins = self._bins
        while bins and bins[0][0] < start:
            bins.popleft()
        counts = dict.fromkeys(range(start, end), 0.0)
        for k, n in bins:
            if k < end:
                counts[int(k)] = n
        mean = sum(counts.values()) / BINS
        if mean <= 0:
            return None
        return sum((n - mean) ** 2 for n in counts.values()) / BINS / mean
