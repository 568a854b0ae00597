"""The tiers as Kubernetes sees them: a PriorityClass per tier, a Volcano Queue per tier and pool
(under a parent Queue per pool when `spec.kubernetes.queueHierarchy` is set).

The figures are the planner's (`tier_pool_shares`, what `xpool plan` prints); this module only
lays them out as resource lists of the pool.
"""

from __future__ import annotations

from xpool.capacity.borrowing import pool_guarantee
from xpool.config.models import Pool, Tier
from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import parent_queue_name, priority_class_name, queue_name
from xpool.render.resources import pool_resources

PRIORITY_ORDER = 1  # before anything that names a priority class
QUEUE_ORDER = 4  # before the worker Jobs that name a queue


def reclaimable(tier: Tier) -> bool:
    """A queue may give resources back unless its tier neither yields nor borrows (P0).

    A borrowing tier must stay reclaimable: Volcano's reclaim never takes from a
    non-reclaimable queue, so what it borrowed could never return to the lender. The capacity
    plugin reclaims only what a queue holds above its `deserved`, and only from preemptable
    pods, so a non-preemptible borrowing tier (P1) keeps its own share.
    """
    return tier.preemptible or tier.borrow


def build_priority_classes(ctx: BuildContext, out: Built) -> None:
    for tier in ctx.tiers:
        out.add(
            PRIORITY_ORDER,
            "PriorityClass",
            "priorityclass.yaml.j2",
            name=priority_class_name(ctx.platform, tier),
            tier=tier.name,
            labels=ctx.labels("priority", tier=tier.name),
            value=tier.priority,
            description=(
                f"xpool tier {tier.name} of {ctx.part_of}: "
                + ("preemptible" if tier.preemptible else "not preemptible")
                + (", borrows idle capacity" if tier.borrow else "")
            ),
        )


def build_queues(ctx: BuildContext, out: Built) -> None:
    for pool in ctx.spec.pools:
        _pool_queues(ctx, out, pool)


def _pool_queues(ctx: BuildContext, out: Built, pool: Pool) -> None:
    """The queues of one pool: its parent (hierarchy only), then one per tier."""
    total = pool.nodes * pool.accelerators_per_node
    shares = ctx.shares[pool.name]
    parent = parent_queue_name(ctx.platform, pool) if ctx.kubernetes.queue_hierarchy else None
    if parent:
        floor = pool_guarantee(shares)
        out.add(
            QUEUE_ORDER,
            "Queue",
            "queue.yaml.j2",
            name=parent,
            labels=ctx.labels("queue", pool=pool.name),
            comment=f"Pool {pool.name}: parent of its tiers' queues ({total} accelerators).",
            parent="root",
            priority=0,
            reclaimable=False,
            deserved=pool_resources(pool, total),
            guarantee=pool_resources(pool, floor) if floor else None,
            capability=pool_resources(pool, total),
        )
    for tier in ctx.tiers:
        mine = shares[tier.name]
        out.add(
            QUEUE_ORDER,
            "Queue",
            "queue.yaml.j2",
            name=queue_name(ctx.platform, tier, pool),
            labels=ctx.labels("queue", tier=tier.name, pool=pool.name),
            comment=(
                f"Tier {tier.name} on {pool.name}: deserved {mine.deserved}, guarantee "
                f"{mine.guarantee}, capability {mine.capability} of {total} accelerators."
            ),
            parent=parent,
            priority=tier.priority,
            reclaimable=reclaimable(tier),
            deserved=pool_resources(pool, mine.deserved),
            guarantee=pool_resources(pool, mine.guarantee) if mine.guarantee else None,
            capability=pool_resources(pool, mine.capability),
        )
