"""Whole accelerators per tier from fractional shares.

Accelerators are indivisible, so a 40% share of 16 cannot be 6.4. Largest-remainder
apportionment keeps the total exact; ties go to the higher-priority tier. The guarantee
floor is rounded down (it is never lent, so it must not exceed what the share delivers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xpool.config.models import Tier


@dataclass(frozen=True)
class TierAccelerators:
    deserved: int
    guarantee: int


def tier_accelerators(tiers: list[Tier], total: int) -> dict[str, TierAccelerators]:
    exact = {t.name: t.share * total for t in tiers}
    floors = {name: math.floor(round(v, 9)) for name, v in exact.items()}
    to_hand_out = math.floor(round(sum(exact.values()), 9)) - sum(floors.values())
    order = sorted(tiers, key=lambda t: (-(exact[t.name] - floors[t.name]), -t.priority, t.name))
    for tier in order[:to_hand_out]:
        floors[tier.name] += 1
    return {
        t.name: TierAccelerators(
            deserved=floors[t.name],
            guarantee=min(floors[t.name], math.floor(round(t.guarantee * total, 9))),
        )
        for t in tiers
    }
