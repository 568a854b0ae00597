"""Placement: the worker of its tier's worker group an instance is launched on, and which of
that worker's accelerators it takes.

A tier owns its worker groups (one Volcano Job per tier and pool on Kubernetes), so an
instance goes only to a worker of its own tier on its model's pool, never to another tier's,
even an idle one: that capacity moves between tiers through worker pods, not instances.
Tensor parallelism runs within one worker, so a TP-4 instance needs 4 free accelerators on
one worker. Among the workers that fit, best fit (the fewest free accelerators, then the
lowest index in its worker group, then node and address): small instances fill partly used
workers and leave whole ones for large instances, the highest-index workers, which a worker
group releases first, empty out, and the same observation always gives the same placement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xpool.policy.spec import PolicySpec
from xpool.policy.state import HOLDING, InstanceObs, WorkerObs


@dataclass(frozen=True)
class Slot:
    worker: str
    devices: tuple[int, ...]


class Placer:
    """Free accelerators per worker, as placed instances take them during one pass."""

    def __init__(
        self, workers: Iterable[WorkerObs], held: Iterable[tuple[str, int, tuple[int, ...]]]
    ):
        """`held`: (worker address, accelerators, their indices when known) per instance."""
        self.workers = {w.address: w for w in sorted(workers, key=lambda w: w.address)}
        self.free = {a: list(range(w.accelerators)) for a, w in self.workers.items()}
        unknown: list[tuple[str, int]] = []
        for address, count, devices in held:
            if address not in self.free:
                continue  # a worker that is gone, or not one of ours
            if devices:
                self.free[address] = [d for d in self.free[address] if d not in devices]
            else:
                unknown.append((address, count))
        for address, count in unknown:  # on CPU nothing reports indices: count them off
            del self.free[address][:count]

    @classmethod
    def of(
        cls, spec: PolicySpec, instances: Iterable[InstanceObs], workers: Iterable[WorkerObs]
    ) -> Placer:
        held = []
        for inst in sorted(instances, key=lambda i: i.uid):
            model = spec.model(inst.model)
            if inst.state in HOLDING and inst.worker is not None and model is not None:
                held.append((inst.worker, model.accelerators, inst.devices))
        return cls(workers, held)

    def covers(self, pool: str) -> bool:
        """Whether workers of `pool` are known (else launches are left to Xinference)."""
        return any(w.pool == pool for w in self.workers.values())

    def place(self, pool: str, tier: str, need: int) -> Slot | None:
        fits = [
            w
            for w in self.workers.values()
            if w.pool == pool and w.tier == tier and len(self.free[w.address]) >= need
        ]
        if not fits:
            return None
        best = min(fits, key=lambda w: (len(self.free[w.address]), w.index, w.node, w.address))
        devices = tuple(self.free[best.address][:need])
        del self.free[best.address][:need]
        return Slot(best.address, devices)

    def shortage(self, pool: str, tier: str, need: int) -> str:
        """Why `place` found nothing: the reason a launch waits (until worker groups grow)."""
        mine = [w for w in self.workers.values() if w.pool == pool and w.tier == tier]
        if not mine:
            return f"tier {tier} has no worker on {pool}"
        most = max(len(self.free[w.address]) for w in mine)
        return (
            f"no worker of tier {tier} on {pool} has {need} free accelerator(s) "
            f"({len(mine)} worker(s), at most {most} free on one)"
        )
