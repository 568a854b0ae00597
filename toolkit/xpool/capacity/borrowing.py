"""What each tier may hold on a pool once borrowing is counted: the figures of its queue and
its worker groups.

`tier_accelerators` (capacity/shares.py) turns the tiers' fractional shares into whole
accelerators (`deserved`, and the `guarantee` floor inside it). Borrowing adds two figures,
computed here so that `xpool render` (Queues and worker Jobs) lays out numbers and does no
arithmetic of its own:

- `capability`, the most a tier's queue may hold. A tier that does not borrow holds its
  deserved share and no more. A borrowing tier may grow into everything the other tiers are
  not guaranteed: guarantees are floors that are never lent, so whatever lies above them can
  be borrowed when idle. It never drops below its own share.
- `burst`, the accelerators a non-preemptible borrowing tier (P1) runs in a separate worker
  group. Its own workers are not preemptable, so what it borrows must live in workers that
  are: reclaim can then give the lender its share back without touching the tier's own
  share. Tiers that are preemptible already yield everything, and tiers that do not borrow
  have nothing to give back, so theirs is 0.

See docs/scheduling.md for how Volcano's capacity plugin reads these figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpool.capacity.shares import tier_accelerators
from xpool.config.models import Tier


@dataclass(frozen=True)
class TierPoolShare:
    """One tier's accelerators on one pool."""

    deserved: int  # its share, whole accelerators
    guarantee: int  # the floor inside `deserved` that is never lent
    capability: int  # the most it may hold: `deserved`, or more when it borrows
    burst: int  # borrowed accelerators its preemptable burst workers may take (P1); else 0


def tier_pool_shares(tiers: list[Tier], total: int) -> dict[str, TierPoolShare]:
    """Every tier's share of a pool of `total` accelerators, by tier name (in `tiers` order)."""
    split = tier_accelerators(tiers, total)
    out: dict[str, TierPoolShare] = {}
    for tier in tiers:
        mine = split[tier.name]
        # what the other tiers are guaranteed: never lent, so never borrowable
        others = sum(s.guarantee for name, s in split.items() if name != tier.name)
        capability = queue_capability(mine.deserved, total, others, borrows=tier.borrow)
        burst = (
            max(0, total - others - mine.deserved) if tier.borrow and not tier.preemptible else 0
        )
        out[tier.name] = TierPoolShare(mine.deserved, mine.guarantee, capability, burst)
    return out


def queue_capability(deserved: int, total: int, others_guaranteed: int, *, borrows: bool) -> int:
    """The most a tier's queue may hold on a pool of `total`: its `deserved` share, or, when it
    borrows, everything the other tiers are not guaranteed (never less than its share)."""
    return max(deserved, total - others_guaranteed) if borrows else deserved


def pool_guarantee(shares: dict[str, TierPoolShare]) -> int:
    """The accelerators of a pool its tiers are guaranteed together: the floor of the pool's
    parent queue when queues form a hierarchy."""
    return sum(s.guarantee for s in shares.values())
