"""The tiers' worker groups: each task of each worker Job, the size of its workers, the
replicas it is rendered with and the most it may grow to.

One Volcano Job per tier and pool holds the tier's deserved share, cut into worker sizes that
pack onto the pool's nodes (`packing.worker_sizes`), one task per size. A non-preemptible
borrowing tier (P1) has a second, preemptable "burst" Job rendered at 0 workers that may grow
to what it borrows (`borrowing.py`). A preemptible borrowing tier (P2) borrows in its own Job:
its widest task may grow by the whole workers its queue's capability allows beyond its share.

Accelerators move between tiers through these replicas (`tasks[*].replicas`, which Volcano
lets a running Job change): the reconciler sets each to what the tier's instances need, and
Volcano's capacity plugin arbitrates between the queues. `xpool render` lays the tasks out
from here and `xpool up` starts and stops its local workers by the same figures, so the
three agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpool.capacity.borrowing import tier_pool_shares
from xpool.capacity.packing import worker_sizes
from xpool.config.derived_names import job_name, worker_task_name
from xpool.config.models import Platform


@dataclass(frozen=True)
class WorkerGroup:
    """One task of a tier's worker Job on a pool: workers of `size` accelerators each."""

    job: str  # the Volcano Job's name
    task: str  # the task's name (one per worker size)
    tier: str
    pool: str
    burst: bool  # the tier's burst Job (borrowed capacity, preemptable)
    size: int  # accelerators per worker
    replicas: int  # as rendered: the tier's deserved share (0 in a burst Job)
    max_replicas: int  # the most the reconciler may scale the task to


def worker_groups(platform: Platform) -> list[WorkerGroup]:
    """Every worker group of every accelerator or multi-node CPU pool, in pool, tier and size
    order (the order of the rendered Jobs and their tasks)."""
    out: list[WorkerGroup] = []
    for pool in platform.spec.pools:
        total = pool.nodes * pool.accelerators_per_node
        shares = tier_pool_shares(platform.spec.tiers, total)
        for tier in platform.spec.tiers:
            share = shares[tier.name]
            grows = share.capability - share.deserved if tier.preemptible and tier.borrow else 0
            sizes = worker_sizes(share.deserved, pool.accelerators_per_node)
            for i, (size, count) in enumerate(sizes):
                extra = grows // size if i == 0 else 0  # the widest task takes what it borrows
                out.append(
                    WorkerGroup(
                        job_name(tier, pool),
                        worker_task_name(size),
                        tier.name,
                        pool.name,
                        False,
                        size,
                        count,
                        count + extra,
                    )
                )
            for size, count in worker_sizes(share.burst, pool.accelerators_per_node):
                out.append(
                    WorkerGroup(
                        job_name(tier, pool, burst=True),
                        worker_task_name(size),
                        tier.name,
                        pool.name,
                        True,
                        size,
                        0,
                        count,
                    )
                )
    return out
