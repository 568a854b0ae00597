"""A tiny closed-loop world for policy tests: it applies the policy's actions to instances
(launches load for a while, drains finish their requests over a few passes) so that
properties can be checked over many passes, not only one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from xpool.capacity.worker_groups import WorkerGroup
from xpool.policy.actions import Action, Drain, Launch, Terminate
from xpool.policy.decide import Outcome, decide
from xpool.policy.spec import ModelSpec, PolicySpec, PoolSpec, ScalingSpec, TierSpec
from xpool.policy.state import InstanceObs, LoadObs, ModelMemory, Observation


def tiers_for(
    pool: str, deserved: tuple[int, int, int], guarantee: int = 0
) -> tuple[TierSpec, ...]:
    """P0 (no borrowing, not preemptible), P1 (borrows), P2 (borrows, preemptible)."""
    return (
        TierSpec("P0", 1_000_000, False, False, {pool: deserved[0]}, {pool: guarantee}),
        TierSpec("P1", 100_000, True, False, {pool: deserved[1]}, {pool: 0}),
        TierSpec("P2", 1_000, True, True, {pool: deserved[2]}, {pool: 0}),
    )


def model(
    name: str,
    tier: str,
    *,
    tp: int = 1,
    qps: float = 10.0,
    lo: int = 1,
    hi: int = 8,
    pool: str = "p",
) -> ModelSpec:
    return ModelSpec(name, tier, pool, "1", tp, qps, 8, lo, hi)


def spec_of(
    models: list[ModelSpec],
    accelerators: int = 10,
    deserved: tuple[int, int, int] = (4, 3, 3),
    scaling: ScalingSpec | None = None,
    guarantee: int = 0,
    groups: tuple[WorkerGroup, ...] = (),
) -> PolicySpec:
    return PolicySpec(
        (PoolSpec("p", accelerators),),
        tiers_for("p", deserved, guarantee),
        tuple(models),
        scaling or ScalingSpec(interval=30, stabilization=300, drain_timeout=120),
        groups,
    )


def group(
    tier: str, size: int, replicas: int, most: int, *, burst: bool = False, pool: str = "p"
) -> WorkerGroup:
    """A worker Job task named as rendered: xinference-p0-p[-burst]/worker-<size>."""
    job = f"xinference-{tier.lower()}-{pool}" + ("-burst" if burst else "")
    return WorkerGroup(job, f"worker-{size}", tier, pool, burst, size, replicas, most)


def ready(
    uid: str, *, inflight: int = 0, since: float = 0.0, state: str = "ready", version: str = "1"
) -> InstanceObs:
    return InstanceObs(uid, uid.split("--")[0], version, state, since, inflight)  # type: ignore[arg-type]


@dataclass
class World:
    spec: PolicySpec
    now: float = 0.0
    load_time: float = 20.0
    instances: dict[str, InstanceObs] = field(default_factory=dict)
    memory: dict[str, ModelMemory] = field(default_factory=dict)
    counter: int = 0

    def observe(self, qps: dict[str, float | None]) -> Observation:
        loads = {
            m: LoadObs(qps=q) if q is not None else LoadObs(missing=("qps",))
            for m, q in qps.items()
        }
        return Observation(self.now, tuple(self.instances.values()), loads)

    def step(self, qps: dict[str, float | None], dt: float = 15.0) -> Outcome:
        out = decide(self.spec, self.observe(qps), self.memory)
        self.memory = dict(out.memory)
        for action in out.actions:
            self.apply(action)
        self.now += dt
        for uid, inst in list(self.instances.items()):
            if inst.state == "loading" and self.now - inst.since >= self.load_time:
                self.instances[uid] = replace(inst, state="ready", since=self.now)
            elif inst.state == "draining" and inst.inflight:
                self.instances[uid] = replace(inst, inflight=inst.inflight - 1)
        return out

    def apply(self, action: Action) -> None:
        if isinstance(action, Launch):
            for _ in range(action.count):
                self.counter += 1
                uid = f"{action.model}--{action.version}--{self.counter}"
                self.instances[uid] = InstanceObs(
                    uid, action.model, action.version, "loading", self.now
                )
        elif isinstance(action, Drain):
            inst = self.instances[action.uid]
            self.instances[action.uid] = replace(inst, state="draining", since=self.now, inflight=2)
        elif isinstance(action, Terminate):
            self.instances.pop(action.uid, None)

    def held(self) -> int:
        return sum(
            self.spec.model(i.model).accelerators  # type: ignore[union-attr]
            for i in self.instances.values()
            if i.state != "failed"
        )

    def active(self, name: str) -> int:
        return sum(
            1
            for i in self.instances.values()
            if i.model == name and i.state in ("loading", "ready")
        )
