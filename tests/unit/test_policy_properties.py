"""Invariants of the policy over many passes of a closed loop, for generated platforms and
load sequences: P0 is never drained below its floor, no tier is drained to make room for a
lower-priority one, held accelerators never exceed a pool,
no model is scaled down within a stabilization window of scaling up, every action has a
reason, and queue shares always add up to the pool."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.policy_world import World, model, spec_of
from xpool.policy.actions import Drain, Launch, SetQueue
from xpool.policy.spec import ScalingSpec

TIERS = ("P0", "P1", "P2")


@st.composite
def platforms(draw):
    accelerators = draw(st.integers(4, 16))
    p0 = draw(st.integers(1, accelerators - 2))
    p1 = draw(st.integers(1, accelerators - p0 - 1))
    deserved = (p0, p1, accelerators - p0 - p1)
    guarantee = draw(st.integers(0, p0))
    models = []
    for n in range(draw(st.integers(1, 4))):
        lo = draw(st.integers(0, 2))
        models.append(
            model(
                f"m{n}",
                draw(st.sampled_from(TIERS)),
                tp=draw(st.sampled_from((1, 1, 2))),
                qps=draw(st.floats(2, 20)),
                lo=lo,
                hi=draw(st.integers(max(1, lo), 6)),
            )
        )
    scaling = ScalingSpec(
        step=draw(st.integers(1, 3)),
        interval=draw(st.sampled_from((15.0, 30.0, 60.0))),
        stabilization=draw(st.sampled_from((60.0, 120.0, 300.0))),
        drain_timeout=60.0,
    )
    return spec_of(models, accelerators, deserved, scaling, guarantee)


loads = st.lists(
    st.one_of(st.none(), st.floats(0, 150)), min_size=10, max_size=60
)  # one figure per pass, spread over the models below


@settings(max_examples=150, deadline=None)
@given(spec=platforms(), series=loads, load_time=st.sampled_from((0.0, 15.0, 45.0)))
def test_invariants_hold_over_a_closed_loop(spec, series, load_time) -> None:
    world = World(spec, load_time=load_time)
    last_up: dict[str, float] = {}
    for n, figure in enumerate(series):
        qps = {
            m.name: (None if figure is None else figure * (i + 1) / len(spec.models))
            for i, m in enumerate(spec.models)
        }
        before = {m.name: world.active(m.name) for m in spec.models}
        now = world.now
        out = world.step(qps)
        for action in out.actions:
            assert action.reason.strip(), action
            if isinstance(action, Drain) and action.reclaimed_for is not None:
                # reclaim flows downwards only (test_reclaim_order.py)
                taken, by = spec.tier(action.tier), spec.tier(action.reclaimed_for)
                assert taken.priority < by.priority, action
        for m in spec.models:
            if any(isinstance(a, Launch) and a.model == m.name for a in out.actions):
                last_up[m.name] = now
        drained: dict[str, int] = {}
        for action in out.actions:
            if isinstance(action, Drain):
                drained[action.model] = drained.get(action.model, 0) + 1
        for name, count in drained.items():
            m = spec.model(name)
            assert m is not None
            corrective = before[name] > m.max
            if m.tier == "P0" and not corrective:
                assert before[name] - count >= m.min, (n, name, out.actions)
            reasons = [a.reason for a in out.actions if isinstance(a, Drain) and a.model == name]
            autoscaled = [r for r in reasons if not r.startswith("reclaimed")]
            if autoscaled and not corrective and name in last_up and last_up[name] != now:
                assert now - last_up[name] >= spec.scaling.stabilization, (name, reasons)
        assert world.held() <= spec.pools[0].accelerators
        shares = [a for a in out.actions if isinstance(a, SetQueue)]
        assert sum(s.deserved for s in shares) == spec.pools[0].accelerators
        assert all(s.capability >= s.deserved for s in shares)
