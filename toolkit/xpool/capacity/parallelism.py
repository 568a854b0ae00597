"""Tensor-parallel degrees an engine accepts, and the smallest one that fits memory."""

from __future__ import annotations

from collections.abc import Callable

from xpool.capacity.memory import MemoryFootprint
from xpool.catalog.architectures import Architecture


def valid_tp_degrees(arch: Architecture, accelerators_per_node: int) -> list[int]:
    """Powers of two within one node that split the attention heads evenly.

    vLLM requires query heads divisible by TP, and KV heads either divisible by TP or
    dividing it (then each rank holds a replica). TP stays inside a node: across nodes it
    needs RDMA-class links that xpool does not assume.
    """
    degrees = []
    tp = 1
    while tp <= accelerators_per_node:
        kv = arch.num_kv_heads
        if arch.num_heads % tp == 0 and (kv % tp == 0 or tp % kv == 0):
            degrees.append(tp)
        tp *= 2
    return degrees


def smallest_fitting(
    degrees: list[int], footprint_at: Callable[[int], MemoryFootprint]
) -> tuple[MemoryFootprint | None, MemoryFootprint | None]:
    """(the smallest TP that fits or None, the footprint at the largest TP tried).

    The second value lets a caller explain how far the best attempt fell short.
    """
    best_attempt = None
    for tp in degrees:
        fp = footprint_at(tp)
        if fp.fits:
            return fp, fp
        best_attempt = fp
    return None, best_attempt
