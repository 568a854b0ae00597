"""Which running workers a pending one may reclaim: Volcano's capacity plugin `reclaim`, as a
multi-worker `xpool up` plays it for its local workers (nothing else plays it there).

The rule (pkg/scheduler/plugins/capacity/capacity.go `preemptiveFn` and `ReclaimableFn`,
pkg/scheduler/actions/reclaim/reclaim.go): a queue reclaims for a pending task only while
what it holds plus the task stays within its `deserved` share, so a tier borrowing beyond its
share waits instead. Victims are other queues' preemptable tasks, taken one by one (lowest
priority first, then highest index, as Volcano evicts a Job's newest pods first) while their
queue holds more than its `deserved` and keeps its `guarantee` after the eviction; each
victim's holding drops as it is chosen, so no queue is reclaimed below its share on the
victims' account. Only the victims on the first node they free enough of are evicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from xpool.capacity.borrowing import TierPoolShare
from xpool.capacity.packing import first_fit


@dataclass(frozen=True)
class Holder:
    """A running worker of a pool, as reclaim sees it."""

    name: str  # what the caller knows it by
    tier: str
    node: int
    accelerators: int
    preemptable: bool  # a burst Job's worker, or any worker of a preemptible tier
    priority: int  # its tier's
    index: int  # in its worker group


def reclaim(
    tier: str,
    size: int,
    free: Sequence[int],
    holders: Sequence[Holder],
    held: Mapping[str, int],
    shares: Mapping[str, TierPoolShare],
) -> tuple[int, list[Holder]] | None:
    """The node a pending worker of `size` for `tier` gets and the workers to evict for it,
    or None when its tier may not reclaim or no victims free a node for it. `free`: each
    node's free accelerators now; `held`: each tier's accelerators in its workers on the pool
    (running or bound to a node), the pending worker's excluded."""
    if held.get(tier, 0) + size > shares[tier].deserved:
        return None  # borrowing beyond its share: it waits, as in Volcano
    left = dict(held)
    room = list(free)
    chosen: list[Holder] = []
    candidates = (h for h in holders if h.tier != tier and h.preemptable)
    for victim in sorted(candidates, key=lambda h: (h.priority, -h.index)):
        share = shares[victim.tier]
        holds = left.get(victim.tier, 0)
        if holds <= share.deserved or holds - victim.accelerators < share.guarantee:
            continue
        left[victim.tier] = holds - victim.accelerators
        room[victim.node] += victim.accelerators
        chosen.append(victim)
        node = first_fit(room, size)
        if node is not None:
            return node, [v for v in chosen if v.node == node]
    return None
