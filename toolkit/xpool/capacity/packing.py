"""How a tier's accelerators on a pool are cut into workers that fit the pool's nodes."""

from __future__ import annotations


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
