"""TTFT samples as the gateway's gate histogram holds them (its buckets), for gate tests."""

from __future__ import annotations

from xpool.gateway.metrics import GATE_BUCKETS

BOUNDS = (*GATE_BUCKETS, float("inf"))


def buckets(times: list[float]) -> tuple[tuple[float, int], ...]:
    """(upper bound, count) per bucket, every bucket listed, as Prometheus would have them."""
    counts = dict.fromkeys(BOUNDS, 0)
    for t in times:
        counts[next(b for b in BOUNDS if t <= b)] += 1
    return tuple(counts.items())
