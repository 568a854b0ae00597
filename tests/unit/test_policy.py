"""Table-driven tests of the scheduling policy with an injected clock (`Observation.now`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.policy_world import World, model, ready, spec_of
from xpool.policy.actions import Drain, Launch, SetQueue, Terminate
from xpool.policy.decide import decide
from xpool.policy.spec import ScalingSpec
from xpool.policy.state import (
    LoadObs,
    ModelMemory,
    Observation,
    memory_from_json,
    memory_to_json,
)


def kinds(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


@pytest.mark.parametrize(
    ("qps", "ready_n", "loading_n", "expected_launch", "why"),
    [
        (9.0, 1, 0, 1, "9 QPS > 80% of 10 QPS"),  # 9 > 8: one step
        (7.0, 1, 0, 0, "load within the scaling band"),
        (40.0, 1, 0, 1, "5 needed, 1 more per scaleUp.interval"),
        (9.0, 1, 1, 0, "1 instance(s) still loading cover it"),  # the loading one counts
        (None, 1, 0, 0, "metrics missing (qps)"),
    ],
)
def test_scale_up_counts_loading_and_steps(qps, ready_n, loading_n, expected_launch, why) -> None:
    spec = spec_of([model("chat", "P0")])
    instances = [ready(f"chat--1--{n}") for n in range(1, ready_n + 1)]
    instances += [ready(f"chat--1--{9 - n}", state="loading") for n in range(loading_n)]
    load = {"chat": LoadObs(qps=qps) if qps is not None else LoadObs(missing=("qps",))}
    out = decide(spec, Observation(100.0, tuple(instances), load), {})
    launches = kinds(out.actions, Launch)
    assert sum(a.count for a in launches) == expected_launch
    decision = out.decisions[0]
    assert why in decision.reason, decision.reason


def test_scale_up_waits_for_interval_then_steps() -> None:
    spec = spec_of([model("chat", "P0")], scaling=ScalingSpec(interval=30, step=2))
    inst = (ready("chat--1--1"),)
    memory = {"chat": ModelMemory(last_up=90.0)}
    out = decide(spec, Observation(100.0, inst, {"chat": LoadObs(qps=50)}), memory)
    assert not kinds(out.actions, Launch)
    assert "next step in 20 s" in out.decisions[0].reason
    out = decide(spec, Observation(121.0, inst, {"chat": LoadObs(qps=50)}), memory)
    (launch,) = kinds(out.actions, Launch)
    assert launch.count == 2 and out.memory["chat"].last_up == 121.0


def test_saturation_alone_scales_up() -> None:
    spec = spec_of([model("chat", "P0")])
    inst = (ready("chat--1--1", inflight=7),)  # 7 of limit 8 = 88% > 75%
    out = decide(spec, Observation(0.0, inst, {"chat": LoadObs(qps=1.0)}), {})
    assert sum(a.count for a in kinds(out.actions, Launch)) == 1
    assert "saturation 88%" in out.decisions[0].reason


def test_scale_down_only_after_stabilization_and_never_blind() -> None:
    spec = spec_of([model("chat", "P0", lo=1)])
    inst = tuple(ready(f"chat--1--{n}") for n in (1, 2, 3))
    low = {"chat": LoadObs(qps=1.0)}  # 1 < 30% of 30
    out = decide(spec, Observation(1000.0, inst, low), {})
    assert not kinds(out.actions, Drain)
    assert out.memory["chat"].low_since == 1000.0
    out = decide(spec, Observation(1299.0, inst, low), out.memory)
    assert not kinds(out.actions, Drain)
    # a pass with missing metrics restarts the window
    blind = decide(spec, Observation(1300.0, inst, {"chat": LoadObs(missing=("qps",))}), out.memory)
    assert not kinds(blind.actions, Drain) and blind.memory["chat"].low_since is None
    out = decide(spec, Observation(1300.0, inst, low), out.memory)
    drains = kinds(out.actions, Drain)
    # 1 QPS needs 1 instance at <= 80%: drain the two newest, not terminate them
    assert [d.uid for d in drains] == ["chat--1--3", "chat--1--2"]
    assert not kinds(out.actions, Terminate)


def test_no_scale_down_within_stabilization_of_a_scale_up() -> None:
    spec = spec_of([model("chat", "P0")])
    inst = tuple(ready(f"chat--1--{n}") for n in (1, 2))
    memory = {"chat": ModelMemory(last_up=900.0, low_since=500.0)}
    out = decide(spec, Observation(1000.0, inst, {"chat": LoadObs(qps=0.5)}), memory)
    assert not kinds(out.actions, Drain)
    assert "within the stabilization window" in out.decisions[0].reason


def test_drain_finishes_then_terminates_or_times_out() -> None:
    spec = spec_of([model("chat", "P0")])
    busy = ready("chat--1--2", state="draining", inflight=3, since=0.0)
    idle = ready("chat--1--3", state="draining", inflight=0, since=50.0)
    out = decide(spec, Observation(100.0, (ready("chat--1--1"), busy, idle), {}), {})
    assert [t.uid for t in kinds(out.actions, Terminate)] == ["chat--1--3"]
    out = decide(spec, Observation(120.0, (ready("chat--1--1"), busy), {}), {})
    (late,) = kinds(out.actions, Terminate)
    assert late.uid == "chat--1--2" and late.timed_out and "drainTimeout 120 s" in late.reason


def test_p1_borrows_idle_p0_capacity_and_queue_shares_follow() -> None:
    spec = spec_of([model("chat", "P0", lo=1), model("search", "P1", lo=1)], accelerators=10)
    inst = (ready("chat--1--1"), *tuple(ready(f"search--1--{n}") for n in (1, 2, 3)))
    out = decide(
        spec, Observation(0.0, inst, {"chat": LoadObs(qps=1), "search": LoadObs(qps=35)}), {}
    )
    (launch,) = kinds(out.actions, Launch)
    assert launch.model == "search" and "borrowing idle capacity" in launch.reason
    shares = {q.tier: q for q in kinds(out.actions, SetQueue)}
    assert shares["P1"].deserved == 4 and shares["P0"].deserved == 4 and shares["P2"].deserved == 2
    assert sum(q.deserved for q in shares.values()) == 10  # lent from P2 (lowest) first


def test_p0_does_not_borrow_beyond_its_share() -> None:
    spec = spec_of([model("chat", "P0", lo=1, hi=9)], accelerators=10, deserved=(4, 3, 3))
    inst = tuple(ready(f"chat--1--{n}") for n in (1, 2, 3, 4))
    out = decide(spec, Observation(0.0, inst, {"chat": LoadObs(qps=100)}), {})
    assert not kinds(out.actions, Launch)
    assert "does not borrow" in out.decisions[0].reason


def test_p0_reclaims_from_p2_first_then_p1_and_waits_for_the_drain() -> None:
    models = [model("chat", "P0", lo=1), model("search", "P1", lo=1), model("batch", "P2", lo=0)]
    spec = spec_of(models, accelerators=6, deserved=(2, 2, 2))
    inst = (
        ready("chat--1--1"),
        *(ready(f"search--1--{n}") for n in (1, 2, 3)),  # P1 borrows 1
        *(ready(f"batch--1--{n}") for n in (1, 2)),  # P2 at its share
    )
    load = {"chat": LoadObs(qps=9), "search": LoadObs(qps=20), "batch": LoadObs(qps=15)}
    # full pool, P0 within its share: P2 holds only its share, so the borrower P1 yields
    out = decide(spec, Observation(0.0, inst, load), {})
    (drain,) = kinds(out.actions, Drain)
    assert drain.model == "search" and "reclaimed for P0" in drain.reason
    assert not kinds(out.actions, Launch)
    assert "launch after the drain" in out.decisions[0].reason
    # when P2 also borrows, P2 (preemptible, lowest) goes first
    inst2 = (
        ready("chat--1--1"),
        ready("search--1--1"),
        ready("search--1--2"),
        *tuple(ready(f"batch--1--{n}") for n in (1, 2, 3)),
    )
    out = decide(spec, Observation(0.0, inst2, load), {})
    (drain,) = kinds(out.actions, Drain)
    assert drain.model == "batch"
    # the next pass, with the drain under way, takes nothing more
    draining = tuple(
        i if i.uid != drain.uid else ready(i.uid, state="draining", inflight=1) for i in inst2
    )
    out = decide(spec, Observation(15.0, draining, load), out.memory)
    assert not kinds(out.actions, Drain) and not kinds(out.actions, Launch)
    assert "waiting for 1 accelerator(s)" in out.decisions[0].reason


def test_non_preemptible_borrower_keeps_its_min() -> None:
    models = [model("chat", "P0", lo=1), model("search", "P1", lo=3)]
    spec = spec_of(models, accelerators=4, deserved=(2, 1, 1))
    inst = (ready("chat--1--1"), *tuple(ready(f"search--1--{n}") for n in (1, 2, 3)))
    out = decide(
        spec, Observation(0.0, inst, {"chat": LoadObs(qps=9), "search": LoadObs(qps=25)}), {}
    )
    assert not kinds(out.actions, Drain)
    assert out.decisions[0].reason.endswith(
        "pool p is full and no lower-priority tier has borrowed capacity to give up"
    )


def test_guarantee_is_never_lent() -> None:
    spec = spec_of(
        [model("chat", "P0", lo=0), model("search", "P1", lo=1, hi=10)],
        accelerators=10,
        deserved=(4, 3, 3),
        guarantee=2,
    )
    inst = tuple(ready(f"search--1--{n}") for n in range(1, 9))  # P1 holds 8 of 10
    out = decide(
        spec, Observation(0.0, inst, {"chat": LoadObs(qps=0), "search": LoadObs(qps=90)}), {}
    )
    assert not kinds(out.actions, Launch)  # 2 free, both guaranteed to P0
    assert "kept for other tiers' guarantees" in out.decisions[1].reason


def test_failed_launch_is_cleaned_up_and_retried_after_the_interval() -> None:
    spec = spec_of([model("chat", "P0", lo=1)])
    failed = ready("chat--1--1", state="failed")
    out = decide(spec, Observation(10.0, (failed,), {}), {"chat": ModelMemory(last_up=0.0)})
    assert [t.uid for t in kinds(out.actions, Terminate)] == ["chat--1--1"]
    assert not kinds(out.actions, Launch) and "retrying after" in out.decisions[0].reason
    out = decide(spec, Observation(31.0, (failed,), {}), {"chat": ModelMemory(last_up=0.0)})
    assert sum(a.count for a in kinds(out.actions, Launch)) == 1


def test_memory_round_trips_and_tolerates_garbage() -> None:
    memory = {"chat": ModelMemory(last_up=1.5, low_since=None)}
    assert memory_from_json(memory_to_json(memory)) == memory
    assert memory_from_json({"x": "nope", "y": {"last_up": "soon", "other": 1}}) == {
        "y": ModelMemory()
    }


def test_closed_loop_scales_up_with_the_step_and_down_after_the_window() -> None:
    world = World(spec_of([model("chat", "P0", lo=1, hi=6)], accelerators=10))
    for _ in range(3):
        world.step({"chat": 0.0})
    assert world.active("chat") == 1
    for _ in range(20):  # 5 minutes at 28 QPS: needs 4 instances (28 / 8), P0's whole share
        world.step({"chat": 28.0})
    assert world.active("chat") == 4
    for _ in range(19):  # 285 s quiet: inside the 300 s window
        world.step({"chat": 0.0})
    assert world.active("chat") == 4
    for _ in range(3):
        world.step({"chat": 0.0})
    assert world.active("chat") == 1


def test_scale_down_lands_between_the_ratios_not_on_the_scale_up_line() -> None:
    """7 QPS on 3 x 10: one instance would run at 70%, a noisy pass at 8.1 QPS away from
    scaling straight back up; two keep it at 35%, under the 55% midpoint."""
    spec = spec_of([model("chat", "P0", lo=1)])
    inst = tuple(ready(f"chat--1--{n}") for n in (1, 2, 3))
    memory = {"chat": ModelMemory(low_since=0.0)}
    out = decide(spec, Observation(400.0, inst, {"chat": LoadObs(qps=7.0)}), memory)
    assert [d.uid for d in kinds(out.actions, Drain)] == ["chat--1--3"]
    assert out.decisions[0].desired == 2


def test_a_full_pool_drains_a_retired_version_to_make_room_for_the_serving_one() -> None:
    """After the last shift (0/100) on a tier with no room left, the canary's second instance
    would wait forever for the retired one, which waits for replacements: it makes room."""
    m = replace(model("chat", "P0", lo=2, hi=2), weights=(("1", 0.0), ("2", 100.0)))
    spec = spec_of([m], accelerators=10, deserved=(2, 4, 4))
    inst = (ready("chat--1--1", version="1"), ready("chat--2--1", version="2"))
    out = decide(spec, Observation(0.0, inst, {"chat": LoadObs(qps=15)}), {})
    drains = kinds(out.actions, Drain)
    assert [d.uid for d in drains] == ["chat--1--1"] and "makes room" in drains[0].reason
    # the canary's launch follows the drain; the decision still counts it as placeable
    assert out.decisions[0].versions == {"2": 2} and out.decisions[0].serving == {"2": 2}


def test_a_canary_that_cannot_get_its_next_steps_instances_is_sized_for_what_fits() -> None:
    """50/50 on a full two-accelerator tier: the 100% step's second canary instance has no
    room while the stable version keeps its share, so the rollout is told 1, not 2."""
    m = replace(
        model("chat", "P0", lo=2, hi=2),
        weights=(("1", 50.0), ("2", 50.0)),
        ahead=(("1", 0.0), ("2", 100.0)),
    )
    spec = spec_of([m], accelerators=10, deserved=(2, 4, 4))
    inst = (ready("chat--1--1", version="1"), ready("chat--2--1", version="2"))
    out = decide(spec, Observation(0.0, inst, {"chat": LoadObs(qps=15)}), {})
    assert not kinds(out.actions, Drain) and not kinds(out.actions, Launch)
    assert out.decisions[0].versions == {"1": 1, "2": 1}
