"""Volcano's reclaim as a multi-worker `xpool up` plays it (capacity/reclaim.py): who may
reclaim, which workers are evicted and on which node the pending worker lands."""

from __future__ import annotations

from xpool.capacity.borrowing import TierPoolShare
from xpool.capacity.reclaim import Holder, reclaim

# 3 nodes of 2: P0 deserves 4, P2 deserves 2 and borrows the rest
SHARES = {"P0": TierPoolShare(4, 4, 4, 0), "P2": TierPoolShare(2, 0, 6, 0)}


def worker(name: str, tier: str, node: int, index: int, *, preemptable: bool = True) -> Holder:
    return Holder(name, tier, node, 2, preemptable, {"P0": 1000, "P2": 10}[tier], index)


P0_0 = worker("p0-0", "P0", 0, 0, preemptable=False)
P2_0 = worker("p2-0", "P2", 2, 0)
P2_1 = worker("p2-1", "P2", 1, 1)


def test_a_tier_within_its_share_reclaims_the_newest_borrowed_worker() -> None:
    held = {"P0": 2, "P2": 4}
    assert reclaim("P0", 2, [0, 0, 0], [P0_0, P2_0, P2_1], held, SHARES) == (1, [P2_1])


def test_a_tier_borrowing_beyond_its_share_does_not_reclaim() -> None:
    held = {"P0": 4, "P2": 2}
    assert reclaim("P0", 2, [0, 0, 0], [P0_0, P2_0, P2_1], held, SHARES) is None
    # nor does P2 take back what P0 holds within its share
    assert reclaim("P2", 2, [0, 0, 0], [P0_0, P2_0], {"P0": 4, "P2": 2}, SHARES) is None


def test_no_tier_is_reclaimed_below_its_share_nor_a_non_preemptable_worker() -> None:
    held = {"P0": 2, "P2": 2}  # P2 within its share: nothing to take
    assert reclaim("P0", 2, [0, 0, 2], [P0_0, P2_0], held, SHARES) is None
    p1 = Holder("p1-0", "P1", 1, 2, False, 100, 0)
    shares = {**SHARES, "P1": TierPoolShare(0, 0, 2, 2)}
    assert reclaim("P0", 2, [0, 0, 0], [p1], {"P0": 2, "P1": 2}, shares) is None


def test_only_the_victims_on_the_node_that_fits_are_evicted() -> None:
    # P2 holds 4 in two 1-accelerator workers on node 2 and one 2-accelerator worker on node 1
    small = [
        Holder("p2-a", "P2", 2, 1, True, 10, 3),
        Holder("p2-b", "P2", 2, 1, True, 10, 2),
    ]
    wide = Holder("p2-c", "P2", 1, 2, True, 10, 1)
    held = {"P0": 2, "P2": 4}
    # highest index first: p2-a frees 1 on node 2 (not enough), p2-b then fits node 2
    assert reclaim("P0", 2, [0, 0, 0], [*small, wide], held, SHARES) == (2, small)
    # the lowest-priority tier is taken first
    p1 = Holder("p1-0", "P1", 0, 2, True, 100, 9)
    shares = {**SHARES, "P1": TierPoolShare(0, 0, 2, 2)}
    found = reclaim("P0", 2, [0, 0, 0], [p1, wide], {"P0": 0, "P1": 2, "P2": 4}, shares)
    assert found == (1, [wide])
