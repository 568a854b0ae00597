"""One pass of the scheduling policy: observations + memory -> actions, decisions, memory.

Order of work, highest-priority tier first so it claims capacity first:
1. finish drains: terminate draining instances that are idle or past `drainTimeout`;
2. per model, the autoscaler's target (`autoscale.py`);
3. scale-downs drain instances (never terminate them directly: the gateway finishes their
   requests first);
4. scale-ups launch within the tier's deserved share; beyond it only for tiers that borrow, and
   only from idle capacity that no other tier's guarantee still claims; when workers are
   observed, each instance on a worker of its own tier with room (`placement.py`), one
   Launch per instance naming its worker and accelerators;
5. a tier within its share that finds the pool full reclaims from tiers holding more than
   their share: preemptible tiers first, then lower priority first; non-preemptible borrowers
   keep their models' `instances.min`; the launch waits for the drains;
6. when the groups' replicas are observed, worker groups (`worker_groups.py`): an instance
   the share allows but no worker of its tier can hold keeps its accelerators in the ledger
   (so no lower tier borrows them meanwhile) and asks for a worker; trailing workers that
   hold nothing are released;
7. queue shares (`queues.py`) so that Volcano's own reclaim agrees with the lending above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from xpool.policy.actions import Action, Decision, Drain, Launch, Terminate
from xpool.policy.autoscale import Target, autoscale
from xpool.policy.ledger import Ledger
from xpool.policy.placement import Placer, Slot
from xpool.policy.queues import queue_shares
from xpool.policy.spec import ModelSpec, PolicySpec, TierSpec
from xpool.policy.state import InstanceObs, LoadObs, Memory, ModelMemory, Observation
from xpool.policy.versions import VersionPlan, plan_versions, serving_versions
from xpool.policy.worker_groups import Unplaced, scalable, scale_groups


@dataclass(frozen=True)
class Outcome:
    actions: tuple[Action, ...]
    decisions: tuple[Decision, ...]
    memory: dict[str, ModelMemory]


def _uid_order(inst: InstanceObs) -> tuple[int, str]:
    tail = inst.uid.rsplit("--", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, inst.uid)


def finish_drains(spec: PolicySpec, obs: Observation) -> list[Action]:
    actions: list[Action] = []
    timeout = spec.scaling.drain_timeout
    for inst in obs.instances:
        if inst.state == "failed":
            actions.append(
                Terminate(inst.uid, inst.model, f"launch failed: {inst.error or 'unknown error'}")
            )
        elif inst.state == "draining" and inst.inflight == 0:
            actions.append(Terminate(inst.uid, inst.model, "drained: no request in flight"))
        elif inst.state == "draining" and obs.now - inst.since >= timeout:
            actions.append(
                Terminate(
                    inst.uid,
                    inst.model,
                    f"drainTimeout {timeout:g} s passed with {inst.inflight} request(s) in flight",
                    timed_out=True,
                )
            )
    return actions


class _Pass:
    def __init__(self, spec: PolicySpec, obs: Observation) -> None:
        self.spec = spec
        self.obs = obs
        self.ledger = Ledger(spec, obs)
        self.actions: list[Action] = []
        self.draining: set[str] = {i.uid for i in obs.instances if i.state == "draining"}
        self.launched: set[str] = set()  # models with a launch this pass
        self.placer = Placer.of(spec, obs.instances, obs.workers)
        self.widest: dict[tuple[str, str], int] = {}  # (tier, pool) -> its widest group's size
        for g in scalable(spec, obs):
            self.widest[(g.tier, g.pool)] = max(g.size, self.widest.get((g.tier, g.pool), 0))
        self.unplaced: dict[tuple[str, str], Unplaced] = {}  # by (tier, pool)
        self.awaiting: dict[str, tuple[str, str]] = {}  # model -> (tier, pool) it waits on

    def drain(self, inst: InstanceObs, tier: str, reason: str) -> None:
        self.draining.add(inst.uid)
        model = self.spec.model(inst.model)
        if model is not None:
            self.ledger.draining[(model.pool, model.tier)] += model.accelerators
        self.actions.append(Drain(inst.uid, inst.model, tier, reason))

    def scale_up(self, model: ModelSpec, version: str, count: int, reason: str) -> tuple[str, int]:
        """Launch up to `count`; returns the reason, amended when capacity limited it, and
        how many were launched."""
        tier = self.spec.tier(model.tier)
        placed = self.placer.covers(model.pool) or any(
            pool == model.pool for _, pool in self.widest
        )
        slots: list[Slot] = []
        launched = 0
        note = ""
        for _ in range(count):
            ok, note = self._room(model, tier)
            if ok and placed:
                slot = self.placer.place(model.pool, tier.name, model.accelerators)
                if slot is None:
                    note = self.placer.shortage(model.pool, tier.name, model.accelerators)
                    if self._await_worker(model, note):
                        continue
                    ok = False
                else:
                    slots.append(slot)
            if not ok:
                break
            self.ledger.hold(model.pool, tier.name, model.accelerators)
            launched += 1
        if launched:
            self.launched.add(model.name)
            self._launch(model, version, launched, reason + (f"; {note}" if note else ""), slots)
        if launched < count:
            return f"{reason}; launched {launched} of {count}: {note}", launched
        return reason + (f"; {note}" if note else ""), launched

    def _await_worker(self, model: ModelSpec, shortage: str) -> bool:
        """Record an instance for a worker group to make room for, holding its accelerators
        meanwhile; False when no group of its tier on the pool can be scaled to hold it."""
        where = (model.tier, model.pool)
        if self.widest.get(where, 0) < model.accelerators:
            return False
        self.unplaced.setdefault(where, Unplaced(shortage)).accelerators.append(model.accelerators)
        self.awaiting[model.name] = where
        self.ledger.hold(model.pool, model.tier, model.accelerators)
        return True

    def _launch(
        self, model: ModelSpec, version: str, count: int, reason: str, slots: list[Slot]
    ) -> None:
        """One Launch for `count` instances, or one per placed instance naming its worker."""
        args = (model.name, version)
        rest = (model.accelerators, model.pool, model.tier, reason)
        if not slots:
            self.actions.append(Launch(*args, count, *rest))
        for slot in slots:
            self.actions.append(Launch(*args, 1, *rest, worker=slot.worker, devices=slot.devices))

    def make_room(self, plan: VersionPlan, tier: str, version: str, count: int) -> int:
        """Drain up to `count` of the model's spare instances (retired, or beyond their
        version's share) so that `version`'s launches fit next pass; returns how many."""
        freed = 0
        for inst in plan.spare:
            if freed == count:
                break
            if inst.uid in self.draining:
                continue
            self.drain(inst, tier, f"makes room for version {version}: the pool is full")
            freed += 1
        return freed

    def _room(self, model: ModelSpec, tier: TierSpec) -> tuple[bool, str]:
        pool, need = model.pool, model.accelerators
        held = self.ledger.held[(pool, tier.name)]
        deserved = tier.deserved.get(pool, 0)
        free = self.ledger.free(pool)
        if held + need <= deserved:
            if free >= need:
                return True, ""
            return False, self._reclaim(model, tier, need - free)
        if not tier.borrow:
            return False, (
                f"tier {tier.name} holds {held} of its {deserved} accelerators on {pool} "
                "and does not borrow"
            )
        reserve = self.ledger.unused_guarantees(pool, tier.name)
        if free - need >= reserve:
            return True, f"borrowing idle capacity ({held + need} > deserved {deserved} on {pool})"
        return False, (
            f"no idle capacity on {pool} to borrow ({free} free, {reserve} kept for other "
            "tiers' guarantees)"
        )

    def _reclaim(self, model: ModelSpec, tier: TierSpec, shortfall: int) -> str:
        pool = model.pool
        if self.ledger.freeing(pool) >= shortfall:
            return f"waiting for {self.ledger.freeing(pool)} accelerator(s) on {pool} to drain"
        lenders = sorted(
            (
                t
                for t in self.spec.tiers
                if t.name != tier.name and self.ledger.over(pool, t.name) > 0
            ),
            key=lambda t: (not t.preemptible, t.priority),
        )
        for lender in lenders:
            for inst in self._victims(pool, lender):
                if (
                    self.ledger.freeing(pool) >= shortfall
                    or self.ledger.over(pool, lender.name) <= 0
                ):
                    break
                self.drain(
                    inst,
                    lender.name,
                    f"reclaimed for {tier.name} ({model.name}): {lender.name} holds "
                    f"{self.ledger.held[(pool, lender.name)]} > deserved "
                    f"{lender.deserved.get(pool, 0)} on {pool}",
                )
        if self.ledger.freeing(pool) >= shortfall:
            return f"reclaiming {shortfall} accelerator(s) on {pool}; launch after the drain"
        return f"pool {pool} is full and no tier holds more than its share"

    def _victims(self, pool: str, lender: TierSpec) -> list[InstanceObs]:
        """The lender's instances on `pool` it can give up: least busy first; a
        non-preemptible tier keeps each model's instances.min."""
        out = []
        for model in (m for m in self.spec.models if m.tier == lender.name and m.pool == pool):
            mine = [
                i
                for i in self.obs.of(model.name)
                if i.state in ("ready", "loading") and i.uid not in self.draining
            ]
            spare = len(mine) if lender.preemptible else max(0, len(mine) - model.min)
            mine.sort(key=lambda i: (i.state != "loading", i.inflight, -_uid_order(i)[0]))
            out.extend(mine[:spare])
        out.sort(key=lambda i: (i.state != "loading", i.inflight))
        return out


def _drain_reason(inst: InstanceObs, plan: VersionPlan, scaled_down: str | None) -> str:
    if inst.version not in plan.desired:
        return f"version {inst.version} has weight 0: replaced by the serving versions"
    if scaled_down is not None:
        return scaled_down
    return (
        f"version {inst.version} holds more than its weighted share ({plan.desired[inst.version]})"
    )


def decide(spec: PolicySpec, obs: Observation, memory: Memory) -> Outcome:
    work = _Pass(spec, obs)
    work.actions.extend(finish_drains(spec, obs))
    decisions: list[Decision] = []
    new_memory: dict[str, ModelMemory] = {}
    targets: dict[str, tuple[Target, int, VersionPlan]] = {}
    for model in spec.models:
        mine = [i for i in obs.of(model.name) if i.uid not in work.draining]
        serving = serving_versions(model.version_weights, model.ahead)
        counted = [i for i in mine if i.version in serving]  # retired versions get no traffic
        t = autoscale(
            model,
            spec.scaling,
            counted,
            obs.load.get(model.name, LoadObs(missing=("qps",))),
            memory.get(model.name, ModelMemory()),
            obs.now,
        )
        active = sum(1 for i in counted if i.state in ("ready", "loading"))
        plan = plan_versions(t.desired, mine, model.version_weights, model.ahead)
        targets[model.name] = (t, active, plan)
        new_memory[model.name] = t.memory
    for model in spec.models:  # drains first: what they free shows in the queue shares
        t, active, plan = targets[model.name]
        scaled_down = t.reason if t.desired < active else None
        for inst in plan.drain:
            work.drain(inst, model.tier, _drain_reason(inst, plan, scaled_down))
    for model in spec.models:
        t, active, plan = targets[model.name]
        reason = t.reason
        placeable = dict(plan.desired)
        for version, count in plan.launch.items():
            why = t.reason
            if t.desired <= active:
                why = f"version {version} needs {plan.desired[version]} instance(s) for its weight"
            reason, launched = work.scale_up(model, version, count, why)
            if launched < count:
                freed = work.make_room(plan, model.tier, version, count - launched)
                placeable[version] -= count - launched - freed
        if plan.launch and model.name not in work.launched:
            new_memory[model.name] = memory.get(model.name, ModelMemory())
        desired = sum(plan.desired.values())
        decisions.append(
            Decision(model.name, model.tier, active, desired, reason, t.inputs, placeable, plan.now)
        )
    groups = scale_groups(spec, obs, work.placer, work.unplaced)
    work.actions.extend(groups.actions)
    decisions = [
        replace(d, reason=f"{d.reason}; {groups.notes[work.awaiting[d.model]]}")
        if d.model in work.awaiting and groups.notes[work.awaiting[d.model]]
        else d
        for d in decisions
    ]
    work.actions.extend(queue_shares(spec, work.ledger))
    return Outcome(tuple(work.actions), tuple(decisions), new_memory)
