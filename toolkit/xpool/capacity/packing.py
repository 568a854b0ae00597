"""How a tier's accelerators on a pool are cut into workers that fit the pool's nodes."""

from __future__ import annotations

from dataclasses import dataclass

from xpool.capacity.shares import tier_accelerators
from xpool.config.models import Tier


def worker_sizes(accelerators: int, per_node: int) -> list[tuple[int, int]]:
    """(accelerators per worker, workers): whole nodes first, then the remainder split into
    powers of two, largest first. With a power-of-two `per_node`, workers of power-of-two
    sizes whose total fits the pool always pack onto its nodes, so the tiers' worker groups
    fit together (6/5/5 of 2 x 8 becomes 4+2, 4+1, 4+1, not 6, 5, 5 which cannot pack)."""
    out = [(per_node, accelerators // per_node)] if accelerators >= per_node else []
    rest = accelerators % per_node
    size = 1 << max(0, per_node.bit_length() - 1)
    while rest:
        if size <= rest:
            out.append((size, 1))
            rest -= size
        size >>= 1
    return out


def first_fit(free: list[int], size: int) -> int | None:
    """The first node (index into `free`, each node's free accelerators) with room for a
    worker of `size`, deterministically; None when none has: the worker pod stays Pending."""
    return next((n for n, room in enumerate(free) if room >= size), None)


@dataclass(frozen=True)
class WorkerSlot:
    """One worker of a tier's worker group: what a worker pod of its Job is on Kubernetes."""

    tier: str
    node: int  # index of the pool's node it runs on
    accelerators: int


def worker_layout(tiers: list[Tier], nodes: int, per_node: int) -> list[WorkerSlot]:
    """The workers of every tier's deserved share of a pool (the sizes `worker_sizes` gives
    the rendered worker Jobs), packed onto the pool's nodes first-fit decreasing, as Volcano's
    binpack would, so that a local run mirrors the Kubernetes layout deterministically.
    Largest workers first, then the higher-priority tier; ValueError when one does not fit
    (only possible with a `per_node` that is not a power of two)."""
    ranked = sorted(tiers, key=lambda t: (-t.priority, t.name))
    shares = tier_accelerators(tiers, nodes * per_node)
    wanted = [
        (size, rank, tier.name)
        for rank, tier in enumerate(ranked)
        for size, count in worker_sizes(shares[tier.name].deserved, per_node)
        for _ in range(count)
    ]
    free = [per_node] * nodes
    out = []
    for size, _rank, tier in sorted(wanted, key=lambda w: (-w[0], w[1])):
        node = first_fit(free, size)
        if node is None:
            raise ValueError(
                f"a worker of {size} accelerator(s) of tier {tier} fits none of {nodes} "
                f"node(s) of {per_node}"
            )
        free[node] -= size
        out.append(WorkerSlot(tier, node, size))
    return sorted(out, key=lambda s: (s.node, -s.accelerators, s.tier))
