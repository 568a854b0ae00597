"""Reclaim ordered by priority: a tier within its share takes back only what lower-priority
tiers borrowed (preemptible first), never what a higher-priority tier holds, and P0's unused
guarantee is lent to no borrower (docs/scheduling.md, "Reclaim")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.policy_world import World, model, ready, spec_of
from xpool.policy.actions import Drain, Launch, SetQueue
from xpool.policy.decide import decide
from xpool.policy.state import LoadObs, Observation
from xpool.sim.engine import Options
from xpool.sim.load import RateLoad
from xpool.sim.policy_comparison import simulate
from xpool.sim.service import Service


def kinds(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def instances(**counts: int):
    return tuple(ready(f"{name}--1--{n}") for name, c in counts.items() for n in range(1, c + 1))


def decision(out, name: str) -> str:
    return next(d.reason for d in out.decisions if d.model == name)


MODELS = [model("chat", "P0"), model("search", "P1"), model("batch", "P2")]


def test_a_lower_tier_within_its_share_waits_for_a_higher_tier_that_borrowed() -> None:
    spec = spec_of(MODELS)  # 10 accelerators, deserved 4/3/3
    inst = instances(chat=2, search=6, batch=2)  # P1 borrowed 3; P2 holds 2 of its 3
    load = {"chat": LoadObs(qps=10), "search": LoadObs(qps=45), "batch": LoadObs(qps=30)}
    out = decide(spec, Observation(0.0, inst, load), {})
    assert not kinds(out.actions, Drain) and not kinds(out.actions, Launch)
    assert decision(out, "batch").endswith(
        "pool p is full; P1 holds 6 > deserved 3 but has higher priority than P2: waiting"
    )
    # Volcano agrees: P2 lends its idle share first, so its queue's deserved is what it
    # holds and the capacity plugin finds nothing to reclaim for it either
    shares = {q.tier: q.deserved for q in kinds(out.actions, SetQueue)}
    assert shares == {"P0": 2, "P1": 6, "P2": 2}


def test_p0_beyond_its_share_is_never_reclaimed_by_a_lower_tier() -> None:
    spec = spec_of(MODELS)
    inst = instances(chat=6, search=2, batch=2)  # P0 holds 6 (its share was 6 before an edit)
    load = {"chat": LoadObs(qps=40), "search": LoadObs(qps=15), "batch": LoadObs(qps=30)}
    out = decide(spec, Observation(0.0, inst, load), {})
    assert not kinds(out.actions, Drain)
    assert decision(out, "batch").endswith(
        "pool p is full; P0 holds 6 > deserved 4 but has higher priority than P2: waiting"
    )


def test_reclaim_takes_preemptible_lower_tiers_first_then_ascending_priority() -> None:
    models = [model("chat", "P0", tp=2), model("search", "P1"), model("batch", "P2")]
    spec = spec_of(models)
    inst = instances(chat=1, search=4, batch=4)  # P0 holds 2 of 4; P1 and P2 borrow 1 each
    load = {"chat": LoadObs(qps=9), "search": LoadObs(qps=25), "batch": LoadObs(qps=25)}
    out = decide(spec, Observation(0.0, inst, load), {})
    drains = kinds(out.actions, Drain)
    assert [(d.tier, d.reclaimed_for) for d in drains] == [("P2", "P0"), ("P1", "P0")]
    assert "reclaimed for P0 (chat): P2 holds 4 > deserved 3 on p" in drains[0].reason
    assert "launch after the drain" in decision(out, "chat")


def test_p1_reclaims_what_p2_borrowed_but_never_what_p0_holds() -> None:
    spec = spec_of(MODELS)
    inst = instances(chat=5, search=1, batch=4)  # P0 beyond its share, P2 borrows 1
    load = {"chat": LoadObs(qps=40), "search": LoadObs(qps=25), "batch": LoadObs(qps=35)}
    out = decide(spec, Observation(0.0, inst, load), {})
    (drain,) = kinds(out.actions, Drain)
    assert (drain.model, drain.reclaimed_for) == ("batch", "P1")
    # the next pass, P2 back at its share and P1 still short: P1 waits for P0
    after = instances(chat=5, search=2, batch=3)
    out = decide(spec, Observation(60.0, after, load), {})
    assert not kinds(out.actions, Drain)
    assert decision(out, "search").endswith(
        "P0 holds 5 > deserved 4 but has higher priority than P1: waiting"
    )


def test_a_higher_tiers_idle_borrowing_returns_through_its_own_scale_down() -> None:
    """P1 borrowed P2's idle share; when P1's load falls, P2 (within its share, wanting more)
    never drains P1: P1's autoscaler gives the instances back after its stabilization
    window, and P2 launches into them."""
    spec = spec_of(MODELS)
    world = World(spec)
    for inst in instances(chat=2, search=6, batch=2):
        world.instances[inst.uid] = inst
    qps = {"chat": 10.0, "search": 45.0, "batch": 30.0}
    drains: list[tuple[float, Drain]] = []
    for n in range(40):  # 10 minutes of 15 s passes
        if n == 4:
            qps["search"] = 10.0  # P1's load falls: 4 of its 6 instances are not needed
        drains += [(world.now, d) for d in kinds(world.step(qps).actions, Drain)]
    assert all(d.reclaimed_for is None for _, d in drains), drains
    p1 = [t for t, d in drains if d.model == "search"]
    assert p1 and min(p1) >= 60.0 + spec.scaling.stabilization  # only after the window
    assert world.active("batch") >= 3  # P2 got its share back


def test_p0s_unused_guarantee_is_lent_to_no_borrower() -> None:
    """Volcano reserves a queue's guarantee for it (the capacity plugin never lends it), so a
    P2 worker placed there would stay Pending: the guarantee is kept for P0 from P1 and P2
    alike; the rest of P0's share is lent and taken back, P2 first (the test above)."""
    spec = spec_of(
        [model("chat", "P0", lo=0), model("search", "P1", hi=10), model("batch", "P2", hi=10)],
        guarantee=2,
    )
    for busy in ("search", "batch"):
        other = "batch" if busy == "search" else "search"
        inst = instances(**{busy: 8})  # 2 free: exactly P0's unused guarantee
        load = {"chat": LoadObs(qps=0), busy: LoadObs(qps=90), other: LoadObs(qps=0)}
        out = decide(spec, Observation(0.0, inst, load), {})
        assert not [a for a in kinds(out.actions, Launch) if a.model == busy]
        assert "kept for other tiers' guarantees" in decision(out, busy)


@st.composite
def observations(draw):
    """A full or nearly full pool in any split between the tiers, including tiers beyond
    their share (shares edited since), under random load."""
    accelerators = draw(st.integers(4, 14))
    p0 = draw(st.integers(1, accelerators - 2))
    p1 = draw(st.integers(1, accelerators - p0 - 1))
    spec = spec_of(
        [
            model(f"m{t}", t, tp=draw(st.sampled_from((1, 2))), lo=0, hi=accelerators)
            for t in ("P0", "P1", "P2")
        ],
        accelerators,
        (p0, p1, accelerators - p0 - p1),
        guarantee=draw(st.integers(0, p0)),
    )
    inst = []
    room = accelerators
    for m in spec.models:
        count = draw(st.integers(0, room // m.accelerators))
        room -= count * m.accelerators
        inst += [ready(f"{m.name}--1--{n}", inflight=draw(st.integers(0, 3))) for n in range(count)]
    load = {m.name: LoadObs(qps=draw(st.floats(0, 200))) for m in spec.models}
    return spec, Observation(0.0, tuple(inst), load)


@settings(max_examples=300, deadline=None)
@given(case=observations())
def test_no_pass_drains_a_higher_priority_tier_to_make_room_for_a_lower_one(case) -> None:
    spec, obs = case
    out = decide(spec, obs, {})
    for drain in kinds(out.actions, Drain):
        assert drain.reason.startswith("reclaimed") == (drain.reclaimed_for is not None)
        if drain.reclaimed_for is not None:
            victim, beneficiary = spec.tier(drain.tier), spec.tier(drain.reclaimed_for)
            assert victim.priority < beneficiary.priority, drain
            assert drain.tier == spec.model(drain.model).tier  # type: ignore[union-attr]


def _service(name: str, tier: str, qps: float) -> Service:
    """8 slots, a reference request (100 in, 32 out) making `qps` per instance."""
    return Service(name, tier, "p", 1, 8, qps, 1e-4, (8 / qps - 0.01) / 32, 100, 32, 0.5, 0.2)


def test_simulated_contention_reclaims_only_downwards() -> None:
    """P1 and P2 both want more than their shares while P0's load comes and goes: the
    simulator counts reclaims by tier, and none goes to a lower tier."""
    spec = spec_of(
        [model("chat", "P0", lo=1), model("search", "P1", hi=10), model("batch", "P2", hi=10)]
    )
    svcs = {m.name: _service(m.name, m.tier, 10.0) for m in spec.models}
    wave = tuple((600.0 * i, (5.0, 30.0, 12.0)[i % 3]) for i in range(18))
    p1 = tuple((600.0 * i, (60.0, 20.0)[i % 2]) for i in range(18))
    load = RateLoad({"chat": wave, "search": p1, "batch": ((0.0, 80.0),)}, 3 * 3600.0)
    result = simulate(spec, svcs, load, ("pooled",), Options(seed=0), 15.0).result("pooled")
    assert result is not None and result.preemptions > 0
    assert sum(n for by in result.reclaimed.values() for n in by.values()) == result.preemptions
    rank = {t.name: t.priority for t in spec.tiers}
    for victim, by in result.reclaimed.items():
        assert all(rank[victim] < rank[beneficiary] for beneficiary in by), result.reclaimed


def test_a_borrowing_tier_takes_back_what_a_lower_tier_borrowed_not_its_share() -> None:
    spec = spec_of(MODELS)
    load = {"chat": LoadObs(qps=5), "search": LoadObs(qps=45), "batch": LoadObs(qps=35)}
    # P1 beyond its share (5 > 3) wants more; P2 borrowed 1 of P0's idle share
    out = decide(spec, Observation(0.0, instances(chat=1, search=5, batch=4), load), {})
    (drain,) = kinds(out.actions, Drain)
    assert (drain.model, drain.reclaimed_for) == ("batch", "P1")
    assert "launch after the drain" in decision(out, "search")
    # P2 at its share: P1 borrows only what is idle, so it waits
    out = decide(spec, Observation(0.0, instances(chat=2, search=5, batch=3), load), {})
    assert not kinds(out.actions, Drain)
    assert "no idle capacity on p to borrow" in decision(out, "search")
