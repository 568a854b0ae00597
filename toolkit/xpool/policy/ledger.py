"""Accelerators held per pool and tier during one pass, updated as the pass decides.

Loading, ready and draining instances all hold their accelerators: a draining instance frees
them only once terminated, which is why a reclaim waits for the drain instead of launching
into capacity that is still serving requests.
"""

from __future__ import annotations

from collections import defaultdict

from xpool.policy.spec import PolicySpec
from xpool.policy.state import HOLDING, Observation


class Ledger:
    def __init__(self, spec: PolicySpec, obs: Observation) -> None:
        self.spec = spec
        self.held: dict[tuple[str, str], int] = defaultdict(int)  # (pool, tier) -> accelerators
        self._pool_held: dict[str, int] = defaultdict(int)
        self.draining: dict[tuple[str, str], int] = defaultdict(int)  # of `held`, draining
        for inst in obs.instances:
            model = spec.model(inst.model)
            if model is None or inst.state not in HOLDING:
                continue
            self.hold(model.pool, model.tier, model.accelerators)
            if inst.state == "draining":
                self.draining[(model.pool, model.tier)] += model.accelerators

    def hold(self, pool: str, tier: str, accelerators: int) -> None:
        self.held[(pool, tier)] += accelerators
        self._pool_held[pool] += accelerators

    def total(self, pool: str) -> int:
        return self._pool_held[pool]

    def freeing(self, pool: str) -> int:
        """Accelerators on `pool` that draining instances give back once terminated."""
        return sum(v for (p, _), v in self.draining.items() if p == pool)

    def free(self, pool: str) -> int:
        return self.spec.pool(pool).accelerators - self.total(pool)

    def over(self, pool: str, tier: str) -> int:
        """Accelerators `tier` will hold on `pool` beyond its deserved share once its drains
        finish (what it still borrows)."""
        held = self.held[(pool, tier)] - self.draining[(pool, tier)]
        return held - self.spec.tier(tier).deserved.get(pool, 0)

    def over_holding(self, pool: str, tier: str) -> int:
        """Like `over`, counting draining instances: they hold until terminated."""
        return self.held[(pool, tier)] - self.spec.tier(tier).deserved.get(pool, 0)

    def unused_guarantees(self, pool: str, besides: str) -> int:
        """Guaranteed accelerators other tiers do not use yet: never lent to a borrower."""
        return sum(
            max(0, t.guarantee.get(pool, 0) - self.held[(pool, t.name)])
            for t in self.spec.tiers
            if t.name != besides
        )
