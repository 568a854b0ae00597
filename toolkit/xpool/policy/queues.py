"""Volcano queue shares that agree with the lending the policy decided.

Volcano's capacity plugin reclaims from any queue holding more than its `deserved`. If a
borrowing tier's queue kept its static `deserved`, Volcano would evict the borrowed workers
whenever the lender asked, killing requests mid-flight. So while a tier borrows, its
`deserved` is raised to what it holds and the lenders' lowered by the same amount (lowest
priority lender first, so P0 keeps the most); draining instances still count, so a queue
shrinks only after its drains have finished. The shares always sum to the pool.
`capability` stays what `xpool render` gives (`capacity/borrowing.py` `queue_capability`).
"""

from __future__ import annotations

from xpool.capacity.borrowing import queue_capability
from xpool.policy.actions import SetQueue
from xpool.policy.ledger import Ledger
from xpool.policy.spec import PolicySpec


def queue_shares(spec: PolicySpec, ledger: Ledger) -> list[SetQueue]:
    """The shares for what each tier holds over or under its share, per pool; the same
    holdings give the same shares, so they are kept in the spec's memo."""
    key = (
        "queue_shares",
        tuple(ledger.over_holding(p.name, t.name) for p in spec.pools for t in spec.tiers),
    )
    if key not in spec.memo:
        spec.memo[key] = tuple(_shares(spec, ledger))
    return list(spec.memo[key])


def _shares(spec: PolicySpec, ledger: Ledger) -> list[SetQueue]:
    out: list[SetQueue] = []
    for pool in spec.pools:
        total = pool.accelerators
        borrowed = {t.name: max(0, ledger.over_holding(pool.name, t.name)) for t in spec.tiers}
        to_cover = sum(borrowed.values())
        lent: dict[str, int] = {}
        for tier in sorted(spec.tiers, key=lambda t: t.priority):
            idle = max(0, -ledger.over_holding(pool.name, tier.name))
            lent[tier.name] = min(idle, to_cover)
            to_cover -= lent[tier.name]
        for tier in spec.tiers:
            base = tier.deserved.get(pool.name, 0)
            deserved = base + borrowed[tier.name] - lent[tier.name]
            others = sum(t.guarantee.get(pool.name, 0) for t in spec.tiers if t.name != tier.name)
            capability = queue_capability(base, total, others, borrows=tier.borrow)
            if borrowed[tier.name]:
                why = f"borrows {borrowed[tier.name]} accelerator(s) beyond its share {base}"
            elif lent[tier.name]:
                why = f"lends {lent[tier.name]} idle accelerator(s) of its share {base}"
            else:
                why = f"holds within its share {base}"
            out.append(SetQueue(tier.name, pool.name, deserved, max(capability, deserved), why))
    return out
