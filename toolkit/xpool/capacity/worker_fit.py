"""Can each model's tier run it where the planner put it? Instances run in the tier's worker
groups on the pool (the rendered worker Jobs, or `xpool up`'s worker processes), cut into
workers by `packing.worker_sizes`, and an instance's tensor-parallel ranks share one worker.

So a model is refused when its tier has no worker group on its pool (a share that rounds to
no accelerator, and nothing to borrow into), or when no worker of the tier there is large
enough for its TP degree: both would otherwise only show at run time, as a launch that waits
forever with "no worker of tier ... has room".

A single-node CPU pool runs one `xinference-local` process, no worker groups: not checked.
"""

from __future__ import annotations

from xpool.capacity.borrowing import TierPoolShare, tier_pool_shares
from xpool.capacity.packing import worker_sizes
from xpool.capacity.plan import CapacityPlan, ModelPlan
from xpool.config.models import Platform, Pool
from xpool.config.positions import PathElem

Found = tuple[tuple[PathElem, ...], str]


def worker_fit_problems(platform: Platform, plan: CapacityPlan) -> list[Found]:
    shares = {
        pool.name: tier_pool_shares(platform.spec.tiers, pool.nodes * pool.accelerators_per_node)
        for pool in platform.spec.pools
    }
    tp_on_pool: dict[tuple[str, str], int] = {}
    for row in plan.models:
        key = (row.model, row.pool)
        tp_on_pool[key] = max(tp_on_pool.get(key, 0), row.tp or 0)
    found: list[Found] = []
    for i, model in enumerate(platform.spec.models):
        placed: ModelPlan | None = plan.placements.get(model.name)
        if placed is None or not placed.fits:
            continue  # fit_problems says why
        pool = platform.pool(placed.pool)
        if pool.vendor == "cpu" and pool.nodes == 1:
            continue
        share = shares[pool.name][model.tier]
        tp = tp_on_pool[(model.name, pool.name)]
        problem = _problem(model.name, model.tier, pool, share, tp)
        if problem is not None:
            found.append((("spec", "models", i, "tier"), problem))
    return found


def _problem(model: str, tier: str, pool: Pool, share: TierPoolShare, tp: int) -> str | None:
    sizes = [
        size
        for accelerators in (share.deserved, share.burst)
        for size, _ in worker_sizes(accelerators, pool.accelerators_per_node)
    ]
    total = pool.nodes * pool.accelerators_per_node
    if not sizes:
        return (
            f"tier {tier} has no worker group on pool {pool.name} (its share rounds to 0 of "
            f"its {total} accelerators, and a worker group holds a share), so model {model} "
            f"placed there could never run; raise tier {tier}'s share, or let the model use "
            "another pool"
        )
    if max(sizes) < tp:
        return (
            f"model {model} runs at TP {tp} on pool {pool.name}, on one worker of {tp} "
            f"accelerators, but tier {tier}'s workers there hold at most {max(sizes)} (its "
            f"share of {share.deserved} accelerators is cut into workers of "
            f"{', '.join(map(str, sorted(set(sizes), reverse=True)))}); give tier {tier} a "
            f"share of at least {tp} accelerators on {pool.name}, or a lower weightPrecision "
            "for a smaller TP degree"
        )
    return None
