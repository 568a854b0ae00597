"""Elastic worker groups in the pure policy: unplaced instances ask for workers of their tier
(main Job, then a burst Job), idle trailing workers are released down to the floor, and a P0
burst on a full pool comes out of these rules over successive passes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.policy_world import group, model, ready, spec_of
from xpool.capacity.worker_groups import WorkerGroup
from xpool.policy.actions import Action, Drain, Launch, ScaleWorkers, SetQueue, Terminate
from xpool.policy.decide import Outcome, decide
from xpool.policy.spec import PolicySpec
from xpool.policy.state import InstanceObs, LoadObs, ModelMemory, Observation, WorkerObs


def worker_of(g: WorkerGroup, index: int) -> WorkerObs:
    job, task = g.job, g.task
    return WorkerObs(f"{job}-{task}-{index}:9000", g.pool, g.tier, "n0", g.size, job, task, index)


def on(uid: str, w: WorkerObs, devices: tuple[int, ...], state: str = "ready") -> InstanceObs:
    return replace(ready(uid, state=state), worker=w.address, devices=devices)


@dataclass
class Fleet:
    """Instances, workers and replicas, changed by the policy's actions: drains finish at once,
    a worker asked for is observed one pass after the pass that asked (its pod starting)."""

    spec: PolicySpec
    replicas: dict[tuple[str, str], int]
    workers: list[WorkerObs]
    instances: dict[str, InstanceObs]
    now: float = 100.0
    memory: dict[str, ModelMemory] = field(default_factory=dict)
    starting: list[WorkerObs] = field(default_factory=list)
    counter: int = 100

    def observe(self, qps: dict[str, float]) -> Observation:
        load = {m: LoadObs(qps=q) for m, q in qps.items()}
        instances = tuple(self.instances.values())
        return Observation(self.now, instances, load, tuple(self.workers), dict(self.replicas))

    def step(self, qps: dict[str, float]) -> Outcome:
        out = decide(self.spec, self.observe(qps), self.memory)
        self.memory = dict(out.memory)
        started, self.starting = self.starting, []
        for action in out.actions:
            self.apply(action)
        self.workers.extend(started)
        self.now += 15.0
        return out

    def apply(self, action: Action) -> None:
        if isinstance(action, Drain):
            inst = self.instances[action.uid]
            self.instances[action.uid] = replace(inst, state="draining", since=self.now)
        elif isinstance(action, Terminate):
            del self.instances[action.uid]
        elif isinstance(action, Launch):
            assert action.worker is not None
            self.counter += 1
            uid = f"{action.model}--{action.version}--{self.counter}"
            inst = InstanceObs(uid, action.model, action.version, "ready", self.now)
            self.instances[uid] = replace(inst, worker=action.worker, devices=action.devices)
        elif isinstance(action, ScaleWorkers):
            key = (action.job, action.task)
            assert self.replicas[key] == action.previous
            self.replicas[key] = action.replicas
            g = next(g for g in self.spec.groups if (g.job, g.task) == key)
            for i in range(action.previous, action.replicas):
                self.starting.append(worker_of(g, i))
            self.workers = [
                w for w in self.workers if (w.job, w.task) != key or w.index < action.replicas
            ]


def scales(out: Outcome) -> list[tuple[str, int, int]]:
    return [(a.job, a.previous, a.replicas) for a in out.actions if isinstance(a, ScaleWorkers)]


P0 = group("P0", 4, 1, 1)
P2 = group("P2", 2, 1, 4)


def full_pool() -> Fleet:
    """8 accelerators, shares 4/2/2. P0's worker was released while idle; P2 borrowed the
    pool: its Job grew to 4 workers, each running one TP-2 batch instance."""
    spec = spec_of(
        [model("chat", "P0", tp=4, lo=0, hi=2), model("batch", "P2", tp=2, lo=1, hi=4)],
        accelerators=8,
        deserved=(4, 2, 2),
        groups=(P0, group("P1", 2, 1, 1), group("P1", 2, 0, 2, burst=True), P2),
    )
    workers = [worker_of(P2, i) for i in range(4)]
    instances = {
        f"batch--1--{i + 1}": on(f"batch--1--{i + 1}", w, (0, 1)) for i, w in enumerate(workers)
    }
    replicas = {(g.job, g.task): 0 for g in spec.groups}
    replicas[(P2.job, P2.task)] = 4
    return Fleet(spec, replicas, workers, instances)


def test_a_p0_burst_on_a_full_pool_over_successive_passes() -> None:
    fleet = full_pool()
    qps = {"chat": 5.0, "batch": 30.0}
    passes = [fleet.step(qps) for _ in range(6)]
    kinds = [[type(a).__name__ for a in o.actions if not isinstance(a, SetQueue)] for o in passes]

    # 1: P2 (preemptible, borrowing) is drained for P0, newest instances first.
    drains = [a for a in passes[0].actions if isinstance(a, Drain)]
    assert [a.uid for a in drains] == ["batch--1--4", "batch--1--3"]
    assert all("reclaimed for P0 (chat)" in a.reason for a in drains)
    assert "launch after the drain" in passes[0].decisions[0].reason
    # 2: the drained instances terminate; their workers still held them when observed.
    assert kinds[1] == ["Terminate", "Terminate"] and not scales(passes[1])
    # 3: P2's idle workers go, highest index first; P0's Job asks for its worker back.
    assert scales(passes[2]) == [(P2.job, 4, 2), (P0.job, 0, 1)]
    down, up = (a for a in passes[2].actions if isinstance(a, ScaleWorkers))
    assert "worker(s) 3, 2 hold no instance" in down.reason, down.reason
    assert up.reason == (
        "tier P0 has no worker on p; asking for 1 more worker(s) (xinference-p0-p/worker-4 0 -> 1)"
    )
    assert "asking for 1 more worker(s)" in passes[2].decisions[0].reason
    # 4: P0's worker is starting: nothing more is asked, and P2 does not borrow back (the
    # instance waiting for it holds its accelerators in the ledger meanwhile).
    assert kinds[3] == [], kinds[3]
    assert "1 instance(s) wait for worker(s) already asked for" in passes[3].decisions[0].reason
    # 5: the new P0 worker is observed and chat is placed on it.
    launches = [a for a in passes[4].actions if isinstance(a, Launch)]
    assert [(a.model, a.worker, a.devices) for a in launches] == [
        ("chat", worker_of(P0, 0).address, (0, 1, 2, 3))
    ]
    # Throughout: every action has a reason, every launch is on a worker of its tier.
    tiers = {w.address: w.tier for w in [*fleet.workers, *fleet.starting]}
    for out in passes:
        for a in out.actions:
            assert a.reason
            if isinstance(a, Launch):
                assert tiers[a.worker] == a.tier
    assert not [a for o in passes for a in o.actions if isinstance(a, Launch) and a.tier == "P2"]
    assert fleet.replicas[(P2.job, P2.task)] == 2 and kinds[5] == []


def test_without_observed_replicas_no_group_is_scaled() -> None:
    fleet = full_pool()
    fleet.step({"chat": 5.0, "batch": 30.0})
    fleet.step({"chat": 5.0, "batch": 30.0})
    obs = replace(fleet.observe({"chat": 5.0, "batch": 30.0}), replicas={})
    out = decide(fleet.spec, obs, fleet.memory)
    assert not scales(out)
    assert out.decisions[0].reason.endswith("launched 0 of 1: tier P0 has no worker on p")


def test_p1_borrowing_grows_its_burst_job_not_its_main_one() -> None:
    main, burst = group("P1", 2, 1, 1), group("P1", 2, 0, 2, burst=True)
    spec = spec_of([model("rag", "P1", tp=2, lo=4, hi=4)], 10, (4, 3, 3), groups=(main, burst))
    w = worker_of(main, 0)
    obs = Observation(0.0, (), {}, (w,), {(main.job, main.task): 1, (burst.job, burst.task): 0})
    out = decide(spec, obs, {})
    assert [a.worker for a in out.actions if isinstance(a, Launch)] == [w.address]
    assert scales(out) == [(burst.job, 0, 2)]
    reason = out.decisions[0].reason
    assert "asking for 2 more worker(s) (xinference-p1-p-burst/worker-2 0 -> 2)" in reason
    assert "1 instance(s) find no worker group of their tier on the pool that may grow" in reason


def test_p2_grows_its_widest_task_up_to_its_most() -> None:
    wide, narrow = group("P2", 2, 1, 3), group("P2", 1, 1, 1)
    spec = spec_of([model("batch", "P2", lo=16, hi=16)], 16, (4, 3, 3), groups=(wide, narrow))
    workers = (worker_of(wide, 0), worker_of(narrow, 0))
    replicas = {(wide.job, wide.task): 1, (narrow.job, narrow.task): 1}
    out = decide(spec, Observation(0.0, (), {}, workers, replicas), {})
    assert len([a for a in out.actions if isinstance(a, Launch)]) == 3
    assert scales(out) == [(wide.job, 1, 3)]
    assert "9 instance(s) find no worker group" in out.decisions[0].reason


def idle_world(busy: tuple[int, ...], lo: int = 1):
    g = group("P0", 1, 4, 4)
    spec = spec_of([model("chat", "P0", lo=lo, hi=8)], 10, (4, 3, 3), groups=(g,))
    workers = tuple(worker_of(g, i) for i in range(4))
    instances = tuple(on(f"chat--1--{i}", workers[i], (0,)) for i in busy)
    load = {"chat": LoadObs(qps=10.0 * len(busy) * 0.5)}
    return spec, Observation(1000.0, instances, load, workers, {(g.job, g.task): 4}), g


def test_only_trailing_idle_workers_are_released() -> None:
    spec, obs, g = idle_world(busy=(0, 2))
    out = decide(spec, obs, {})
    assert scales(out) == [(g.job, 4, 3)]
    assert next(a for a in out.actions if isinstance(a, ScaleWorkers)).reason == (
        "worker(s) 3 hold no instance: releasing their accelerators (xinference-p0-p/worker-1 4 -> 3)"
    )


def test_a_busy_highest_index_worker_blocks_the_release() -> None:
    spec, obs, _ = idle_world(busy=(0, 3))
    assert not scales(decide(spec, obs, {}))


def test_a_draining_instance_still_holds_its_worker() -> None:
    spec, obs, _ = idle_world(busy=(0, 3))
    last = replace(obs.instances[1], state="draining", since=999.0, inflight=1)
    out = decide(spec, replace(obs, instances=(obs.instances[0], last)), {})
    assert not scales(out)


def test_pending_workers_are_released_when_nothing_waits_for_them() -> None:
    spec, obs, g = idle_world(busy=(0, 1))
    out = decide(spec, replace(obs, workers=obs.workers[:2]), {})
    assert scales(out) == [(g.job, 4, 2)]
    assert "2 worker(s) asked for and not started are no longer needed" in scales_reason(out)


def scales_reason(out: Outcome) -> str:
    return next(a.reason for a in out.actions if isinstance(a, ScaleWorkers))


def test_the_floor_keeps_workers_for_instances_min_waiting_for_a_reclaim() -> None:
    """P0's instances wait for P2's drains; its idle workers stay for its instances.min."""
    p0, p2 = group("P0", 1, 2, 2), group("P2", 2, 2, 2)
    for lo, expected in ((2, []), (1, [(p0.job, 2, 1)])):
        spec = spec_of([model("chat", "P0", lo=lo), model("batch", "P2", tp=2, lo=0)], 4, (2, 1, 1))
        spec = replace(spec, groups=(p0, p2))
        workers = (worker_of(p0, 0), worker_of(p0, 1), worker_of(p2, 0), worker_of(p2, 1))
        batch = tuple(on(f"batch--1--{i}", workers[2 + i], (0, 1)) for i in range(2))
        replicas = {(p0.job, p0.task): 2, (p2.job, p2.task): 2}
        load = {"batch": LoadObs(qps=20.0)}
        out = decide(spec, Observation(0.0, batch, load, workers, replicas), {})
        assert any(isinstance(a, Drain) for a in out.actions)
        assert scales(out) == expected


@st.composite
def worlds(draw):
    tiers = ("P0", "P1", "P2")
    groups, workers, instances, replicas = [], [], [], {}
    for tier in tiers:
        for burst in (False, True) if tier == "P1" else (False,):
            for size in draw(st.sets(st.sampled_from((1, 2, 4)), max_size=2)):
                g = group(tier, size, draw(st.integers(0, 2)), draw(st.integers(0, 3)), burst=burst)
                now = draw(st.integers(0, g.max_replicas))
                replicas[(g.job, g.task)] = now
                groups.append(g)
                seen = draw(st.integers(0, now))
                workers.extend(worker_of(g, i) for i in range(seen))
    models = [
        model(f"m{n}", draw(st.sampled_from(tiers)), tp=draw(st.sampled_from((1, 2, 4))), lo=0)
        for n in range(draw(st.integers(1, 3)))
    ]
    for w in workers:
        for m in models:
            if m.tier == w.tier and m.accelerators <= w.accelerators and draw(st.booleans()):
                uid = f"{m.name}--1--{len(instances)}"
                instances.append(on(uid, w, tuple(range(m.accelerators))))
                break
    load = {m.name: LoadObs(qps=draw(st.floats(0, 60))) for m in models}
    spec = spec_of(models, 16, (6, 5, 5), groups=tuple(groups))
    return spec, Observation(1000.0, tuple(instances), load, tuple(workers), replicas)


@settings(max_examples=80, deadline=None)
@given(world=worlds())
def test_replicas_stay_within_bounds_one_direction_deterministic(world) -> None:
    spec, obs = world
    out = decide(spec, obs, {})
    assert out == decide(spec, obs, {})
    most = {(g.job, g.task): g.max_replicas for g in spec.groups}
    keys = [(a.job, a.task) for a in out.actions if isinstance(a, ScaleWorkers)]
    assert len(keys) == len(set(keys))
    for a in out.actions:
        if isinstance(a, ScaleWorkers):
            assert 0 <= a.replicas <= most[(a.job, a.task)] and a.replicas != a.previous
            assert a.previous == obs.replicas[(a.job, a.task)] and a.reason
    assert not scales(decide(spec, replace(obs, replicas={}), {}))


def test_a_released_main_worker_comes_back_before_the_burst_job_grows() -> None:
    main, burst = group("P1", 2, 1, 1), group("P1", 2, 0, 2, burst=True)
    spec = spec_of([model("rag", "P1", tp=2, lo=1)], 10, (4, 3, 3), groups=(main, burst))
    replicas = {(main.job, main.task): 0, (burst.job, burst.task): 0}
    out = decide(spec, Observation(0.0, (), {}, (), replicas), {})
    assert scales(out) == [(main.job, 0, 1)]


def test_the_placer_prefers_the_lower_index_among_equal_fits() -> None:
    g = group("P0", 1, 2, 2)
    low, high = worker_of(g, 0), worker_of(g, 1)
    spec = spec_of([model("chat", "P0", lo=1)], 10, (4, 3, 3), groups=(g,))
    high = replace(high, address="a-first-by-address:9000")
    out = decide(spec, Observation(0.0, (), {}, (high, low), {(g.job, g.task): 2}), {})
    assert [a.worker for a in out.actions if isinstance(a, Launch)] == [low.address]
    assert scales(out) == [(g.job, 2, 1)]  # and the idle high-index worker goes
