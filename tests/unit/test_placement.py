"""Placement in the pure policy: each launch on a worker of its own tier's worker group, bin-packed
by worker; without observed workers, launches stay unplaced (Xinference places them)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.policy_world import model, ready, spec_of
from xpool.capacity.packing import worker_layout
from xpool.config.models import default_tiers
from xpool.policy.actions import Launch
from xpool.policy.decide import decide
from xpool.policy.placement import Placer
from xpool.policy.state import LoadObs, Observation, WorkerObs


def worker(address: str, tier: str, accelerators: int, node: str = "0", pool: str = "p"):
    return WorkerObs(address, pool, tier, node, accelerators)


def on(uid: str, address: str, state: str = "ready", devices: tuple[int, ...] = ()):
    return replace(ready(uid, state=state), worker=address, devices=devices)


def launches(spec, instances, workers, load):
    out = decide(spec, Observation(100.0, tuple(instances), load, tuple(workers)), {})
    return [a for a in out.actions if isinstance(a, Launch)], out


def test_each_launch_names_a_worker_of_its_own_tier() -> None:
    spec = spec_of([model("chat", "P0", lo=2), model("emb", "P1", lo=2)])
    workers = [worker("w-p0", "P0", 4), worker("w-p1", "P1", 3), worker("w-p2", "P2", 3)]
    got, _ = launches(spec, [], workers, {})
    assert [(a.model, a.count, a.worker, a.devices) for a in got] == [
        ("chat", 1, "w-p0", (0,)),
        ("chat", 1, "w-p0", (1,)),
        ("emb", 1, "w-p1", (0,)),
        ("emb", 1, "w-p1", (1,)),
    ]


def test_tp4_needs_four_free_accelerators_on_one_worker() -> None:
    """Two P0 workers with 3 free each hold 6 free accelerators, yet no TP-4 instance."""
    spec = spec_of([model("big", "P0", tp=4)], accelerators=16, deserved=(8, 4, 4))
    workers = [worker("a", "P0", 4), worker("b", "P0", 4)]
    busy = [on("small--1--1", "a"), on("small--1--2", "b")]
    spec = replace(spec, models=(*spec.models, model("small", "P0", lo=2)))
    got, out = launches(spec, busy, workers, {"small": LoadObs(qps=1)})
    assert not [a for a in got if a.model == "big"]
    reason = next(d.reason for d in out.decisions if d.model == "big")
    assert "no worker of tier P0 on p has 4 free accelerator(s)" in reason, reason
    assert "at most 3 free on one" in reason, reason


def test_best_fit_fills_the_partly_used_worker_first() -> None:
    spec = spec_of([model("chat", "P0", lo=2)], accelerators=16, deserved=(8, 4, 4))
    workers = [worker("a", "P0", 4), worker("b", "P0", 4)]
    got, _ = launches(spec, [on("chat--1--1", "b", devices=(0,))], workers, {})
    assert [(a.worker, a.devices) for a in got] == [("b", (1,))]


def test_never_on_another_tiers_idle_worker() -> None:
    """P1's worker is full; P2's is idle: the launch waits and says why."""
    spec = spec_of([model("emb", "P1", lo=2)])
    workers = [worker("w-p1", "P1", 1), worker("w-p2", "P2", 3)]
    got, out = launches(spec, [on("emb--1--1", "w-p1")], workers, {})
    assert got == []
    assert "no worker of tier P1 on p has 1 free accelerator(s)" in out.decisions[0].reason


def test_a_tier_without_workers_on_the_pool_gets_the_reason() -> None:
    spec = spec_of([model("batch", "P2")])
    got, out = launches(spec, [], [worker("w-p0", "P0", 4)], {})
    assert got == [] and "tier P2 has no worker on p" in out.decisions[0].reason


def test_without_workers_nothing_changes() -> None:
    spec = spec_of([model("chat", "P0", lo=2)])
    got, _ = launches(spec, [], [], {})
    assert [(a.count, a.worker, a.devices) for a in got] == [(2, None, ())]


def test_known_devices_are_kept_and_unknown_ones_counted_off() -> None:
    spec = spec_of([model("m", "P0", tp=2)])
    placer = Placer.of(
        spec,
        [on("m--1--1", "a", devices=(2, 3)), on("m--1--2", "b"), on("m--1--3", "gone")],
        [worker("a", "P0", 4), worker("b", "P0", 4)],
    )
    assert placer.free == {"a": [0, 1], "b": [2, 3]}


def test_draining_instances_still_hold_their_accelerators() -> None:
    spec = spec_of([model("chat", "P0", lo=2)])
    got, _ = launches(spec, [on("chat--1--9", "a", state="draining")], [worker("a", "P0", 1)], {})
    assert got == []


@settings(max_examples=60, deadline=None)
@given(
    nodes=st.integers(1, 4),
    per_node=st.sampled_from([1, 2, 4, 8]),
    tps=st.lists(st.sampled_from([1, 2, 4]), min_size=1, max_size=6),
    tiers=st.lists(st.sampled_from(["P0", "P1", "P2"]), min_size=6, max_size=6),
)
def test_placements_never_cross_tiers_or_overfill(nodes, per_node, tps, tiers) -> None:
    """Workers laid out as the worker Jobs are; whatever is asked, every placed instance is on
    a worker of its tier, within that worker's accelerators, and the same input places alike."""
    layout = worker_layout(default_tiers(), nodes, per_node)
    workers = [worker(f"w{i}", s.tier, s.accelerators, str(s.node)) for i, s in enumerate(layout)]
    total = nodes * per_node
    deserved = tuple(sum(s.accelerators for s in layout if s.tier == t) for t in ("P0", "P1", "P2"))
    models = [model(f"m{i}", tiers[i], tp=tp, lo=2) for i, tp in enumerate(tps)]
    spec = spec_of(models, accelerators=total, deserved=deserved)
    got, _ = launches(spec, [], workers, {})
    again, _ = launches(spec, [], workers, {})
    assert got == again
    by_address = {w.address: w for w in workers}
    used: dict[str, set[int]] = {}
    for a in got:
        w = by_address[a.worker]
        assert (
            w.tier == a.tier
            and len(a.devices) == a.accelerators == spec.model(a.model).accelerators
        )
        assert set(a.devices) <= set(range(w.accelerators))
        assert not used.setdefault(a.worker, set()) & set(a.devices)
        used[a.worker] |= set(a.devices)


@pytest.mark.parametrize(
    ("nodes", "per_node", "expected"),
    [
        (3, 2, [("P0", 0, 2), ("P1", 1, 2), ("P2", 2, 2)]),  # examples/multi-worker.yaml
        (1, 4, [("P0", 0, 2), ("P1", 0, 1), ("P2", 0, 1)]),
        (
            2,
            8,
            [("P0", 0, 4), ("P1", 0, 4), ("P2", 1, 4), ("P0", 1, 2), ("P1", 1, 1), ("P2", 1, 1)],
        ),
    ],
)
def test_worker_layout_mirrors_the_worker_jobs(nodes, per_node, expected) -> None:
    layout = worker_layout(default_tiers(), nodes, per_node)
    assert [(s.tier, s.node, s.accelerators) for s in layout] == expected
