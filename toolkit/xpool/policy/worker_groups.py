"""Elastic worker groups: the replicas each worker Job task should have after one pass.

Instances move between tiers, accelerators between worker groups (`capacity/worker_groups.py`).
Up: an instance the tier's share allows but no worker of its tier has room for (`Unplaced`)
asks for a worker: its Job's main tasks first, up to their most (for a non-preemptible tier
the rendered share, after idle workers were released), then a borrowing tier's burst Job; only
a task whose workers are wide enough (TP runs within one worker). Needs are packed first-fit
into workers asked for and not yet started before new ones are asked for, so repeated passes
do not ask twice. Down: Volcano deletes a task's highest-index pods first, so replicas drop
while the highest-index worker holds no instance (a pod not started yet holds none either,
unless the tier still waits for room there), never below what the tier's models'
`instances.min` need, and not at all while one of the tier's instances there is on no
observed worker. A group changes in one direction per pass; releases come before requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from xpool.capacity.worker_groups import WorkerGroup
from xpool.policy.actions import ScaleWorkers
from xpool.policy.placement import Placer
from xpool.policy.spec import PolicySpec
from xpool.policy.state import HOLDING, Observation, WorkerObs

Key = tuple[str, str]  # (job, task)
TierPool = tuple[str, str]  # (tier, pool)


@dataclass
class Unplaced:
    """A tier's instances on one pool that its share allows and no worker could hold."""

    shortage: str  # the first `Placer.shortage` of the pass: why they wait
    accelerators: list[int] = field(default_factory=list)  # per instance


@dataclass(frozen=True)
class GroupScaling:
    actions: list[ScaleWorkers]
    notes: dict[TierPool, str]  # what was done for each (tier, pool)'s unplaced instances


def _key(g: WorkerGroup) -> Key:
    return (g.job, g.task)


def scalable(spec: PolicySpec, obs: Observation) -> list[WorkerGroup]:
    """The groups whose replicas are observed, hence can be set (none: leave them alone)."""
    return [g for g in spec.groups if _key(g) in obs.replicas]


def scale_groups(
    spec: PolicySpec, obs: Observation, placer: Placer, unplaced: Mapping[TierPool, Unplaced]
) -> GroupScaling:
    """`placer`: the pass's free accelerators per worker after its placements."""
    groups = scalable(spec, obs)
    observed: dict[Key, dict[int, WorkerObs]] = defaultdict(dict)
    for w in obs.workers:
        observed[(w.job, w.task)][w.index] = w
    replicas = {_key(g): obs.replicas[_key(g)] for g in groups}
    reasons: dict[Key, str] = {}
    notes = {
        tp: _grow([g for g in groups if (g.tier, g.pool) == tp], need, replicas, observed, reasons)
        for tp, need in unplaced.items()
    }
    _shrink(spec, obs, placer, groups, set(unplaced), replicas, observed, reasons)
    changed = [g for g in groups if replicas[_key(g)] != obs.replicas[_key(g)]]
    changed.sort(key=lambda g: replicas[_key(g)] > obs.replicas[_key(g)])  # stable: downs first
    actions = [
        ScaleWorkers(
            g.job,
            g.task,
            g.tier,
            g.pool,
            replicas[_key(g)],
            obs.replicas[_key(g)],
            reasons[_key(g)],
        )
        for g in changed
    ]
    return GroupScaling(actions, notes)


def _grow(
    mine: list[WorkerGroup],
    need: Unplaced,
    replicas: dict[Key, int],
    observed: Mapping[Key, Mapping[int, WorkerObs]],
    reasons: dict[Key, str],
) -> str:
    """Ask for the workers `need` still lacks; returns what was done, for the decisions."""
    asked: list[list[int]] = []  # [free accelerators, asked before this pass] per worker
    for g in mine:  # asked for and not observed yet: they will hold what fits
        seen = sum(1 for i in observed.get(_key(g), {}) if i < replicas[_key(g)])
        asked.extend([g.size, 1] for _ in range(replicas[_key(g)] - seen))
    before = dict(replicas)
    waiting = unmet = 0
    for acc in sorted(need.accelerators, reverse=True):  # first-fit decreasing
        fit = next((w for w in asked if w[0] >= acc), None)
        if fit is not None:
            fit[0] -= acc
            waiting += fit[1]
            continue
        grow = min(
            (g for g in mine if g.size >= acc and replicas[_key(g)] < g.max_replicas),
            key=lambda g: (g.burst, g.size),  # main Job first; the narrowest that holds it
            default=None,
        )
        if grow is None:
            unmet += 1
            continue
        replicas[_key(grow)] += 1
        asked.append([grow.size - acc, 0])
    changes = [
        f"{g.job}/{g.task} {before[_key(g)]} -> {replicas[_key(g)]}"
        for g in mine
        if replicas[_key(g)] != before[_key(g)]
    ]
    notes = []
    if changes:
        added = sum(replicas[_key(g)] - before[_key(g)] for g in mine)
        notes.append(f"asking for {added} more worker(s) ({', '.join(changes)})")
        for g in mine:
            if replicas[_key(g)] != before[_key(g)]:
                reasons[_key(g)] = f"{need.shortage}; {notes[0]}"
    if waiting:
        notes.append(f"{waiting} instance(s) wait for worker(s) already asked for")
    if unmet:
        notes.append(
            f"{unmet} instance(s) find no worker group of their tier on the pool that may grow "
            "(each at its most replicas, or too narrow)"
        )
    return "; ".join(notes)


def _occupied(spec: PolicySpec, obs: Observation) -> tuple[set[str], set[TierPool]]:
    """Workers some instance is on (of any model), and the (tier, pool)s with an instance on
    no observed worker: it may run on any of their workers, so none of them goes."""
    addresses = {w.address for w in obs.workers}
    busy: set[str] = set()
    unseen: set[TierPool] = set()
    for inst in obs.instances:
        if inst.state not in HOLDING:
            continue
        if inst.worker is not None:
            busy.add(inst.worker)
        model = spec.model(inst.model)
        if model is not None and inst.worker not in addresses:
            unseen.add((model.tier, model.pool))
    return busy, unseen


def _shrink(
    spec: PolicySpec,
    obs: Observation,
    placer: Placer,
    groups: list[WorkerGroup],
    needy: set[TierPool],
    replicas: dict[Key, int],
    observed: Mapping[Key, Mapping[int, WorkerObs]],
    reasons: dict[Key, str],
) -> None:
    """Release trailing workers that hold nothing, burst Jobs first, down to the floor."""
    floor: dict[TierPool, int] = defaultdict(int)  # accelerators the models' min need
    for m in spec.models:
        floor[(m.tier, m.pool)] += m.min * m.accelerators
    capacity: dict[TierPool, int] = defaultdict(int)
    for g in groups:
        capacity[(g.tier, g.pool)] += replicas[_key(g)] * g.size
    busy, unseen = _occupied(spec, obs)
    for g in reversed(groups):  # burst Jobs first, narrow tasks before wide ones
        key, tp = _key(g), (g.tier, g.pool)
        if key in reasons or tp in unseen:  # grown this pass; or which worker is busy is unknown
            continue
        r, idle, pending = replicas[key], [], 0
        while r > 0 and capacity[tp] - g.size >= floor[tp]:
            w = observed.get(key, {}).get(r - 1)
            if w is None:
                if tp in needy:
                    break
                pending += 1
            elif w.address in busy or len(placer.free.get(w.address, ())) < w.accelerators:
                break
            else:
                idle.append(str(r - 1))
            r -= 1
            capacity[tp] -= g.size
        if r == replicas[key]:
            continue
        parts = []
        if pending:
            parts.append(f"{pending} worker(s) asked for and not started are no longer needed")
        if idle:
            parts.append(f"worker(s) {', '.join(idle)} hold no instance")
        reasons[key] = (
            f"{'; '.join(parts)}: releasing their accelerators "
            f"({g.job}/{g.task} {replicas[key]} -> {r})"
        )
        replicas[key] = r
