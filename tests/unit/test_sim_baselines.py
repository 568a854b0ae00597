"""The baselines the simulator compares pooled against are fair: same settings, same pool."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.policy_world import model, spec_of
from tests.unit.test_sim_engine import SCALING, diurnal, service
from xpool.sim.baselines import oracle, within_pool
from xpool.sim.engine import Options
from xpool.sim.load import RateLoad, work_profile
from xpool.sim.policy_comparison import simulate


def _run(spec, svcs, load, policies):
    return simulate(spec, svcs, load, policies, Options(cold_start=60.0), 15.0)


def test_hpa_and_pooled_decide_alike_without_contention() -> None:
    """One model alone in a large pool: with the same step, interval and stabilization, the
    HPA-like baseline scales exactly as the pooled policy does."""
    chat = model("chat", "P0", qps=10, lo=1, hi=20)
    spec = spec_of([chat], accelerators=40, deserved=(30, 5, 5), scaling=SCALING)
    svcs = {"chat": service("chat", "P0", qps=10)}
    c = _run(spec, svcs, diurnal("chat", 60, 1), ("hpa", "pooled"))
    hpa, pooled = c.result("hpa"), c.result("pooled")
    assert hpa is not None and pooled is not None
    assert hpa.scale_ups == pooled.scale_ups > 0
    assert hpa.accelerator_hours == pytest.approx(pooled.accelerator_hours)


def test_siloed_keeps_each_tier_within_its_share() -> None:
    """P2 wants 8 of the 10 accelerators while P0 is quiet: hpa lets it take them, siloed
    stops it at its share of 3."""
    spec = spec_of(
        [
            model("chat", "P0", qps=10, lo=1, hi=8),
            model("eval", "P2", qps=1, lo=0, hi=8),
        ],
        scaling=SCALING,
    )
    svcs = {"chat": service("chat", "P0", qps=10), "eval": service("eval", "P2", qps=1)}
    load = RateLoad({"chat": ((0.0, 2.0),), "eval": ((0.0, 6.0),)}, 3600.0)
    c = _run(spec, svcs, load, ("hpa", "siloed"))
    hpa, siloed = c.result("hpa"), c.result("siloed")
    assert hpa is not None and siloed is not None
    assert max(s.held["P2"] for s in siloed.samples) == 3
    assert max(s.held["P2"] for s in hpa.samples) > 3


def test_warm_start_fits_the_pool_and_the_tier_shares() -> None:
    spec = spec_of(
        [model("chat", "P0", lo=1, hi=8), model("eval", "P2", tp=2, lo=0, hi=8)],
        accelerators=10,
        deserved=(4, 3, 3),
    )
    wanted = {"chat": 7, "eval": 4}
    assert within_pool(wanted, spec) == {"chat": 7, "eval": 1}
    assert within_pool(wanted, spec, by_tier=True) == {"chat": 4, "eval": 1}


def test_the_capped_oracle_respects_pool_max_and_cold_start() -> None:
    """A step from 1 to 30 instances' worth of work on a 10-accelerator pool, max 8."""
    chat = model("chat", "P0", qps=10, lo=1, hi=8)
    spec = spec_of([chat], accelerators=10, scaling=SCALING)
    svc = service("chat", "P0", qps=10)
    load = RateLoad({"chat": ((0.0, 5.0), (600.0, 300.0))}, 1200.0)
    profile = work_profile(load, {"chat": svc})
    bound = oracle(profile, {"chat": svc}, spec, load.end)
    capped = oracle(profile, {"chat": svc}, spec, load.end, {"chat": 0.0})
    cold = oracle(profile, {"chat": svc}, spec, load.end, {"chat": 60.0})
    assert bound.accelerator_seconds == pytest.approx((1 + 30) * 600)
    assert capped.accelerator_seconds == pytest.approx((1 + 8) * 600)
    assert cold.accelerator_seconds == pytest.approx((1 + 8) * 600 + 7 * 60)
    smaller = replace(spec, pools=(replace(spec.pools[0], accelerators=5),))
    assert oracle(profile, {"chat": svc}, smaller, load.end, {"chat": 0.0}).accelerator_seconds == (
        pytest.approx((1 + 5) * 600)
    )


def test_reports_divide_by_the_capped_oracle_and_list_the_bound() -> None:
    """Within instances.max, the capped oracle pays the cold starts the bound ignores; a
    max too small to serve the peak holds fewer accelerators and serves less than its work."""
    svcs = {"chat": service("chat", "P0", qps=10)}
    for hi, cheaper in ((8, "oracle-bound"), (2, "oracle")):
        spec = spec_of([model("chat", "P0", qps=10, lo=1, hi=hi)], scaling=SCALING)
        c = _run(spec, svcs, diurnal("chat", 30, 1), ("oracle", "oracle-bound"))
        capped, bound = c.result("oracle"), c.result("oracle-bound")
        assert capped is not None and bound is not None
        assert c.oracle_hours == pytest.approx(capped.accelerator_hours)
        low = c.result(cheaper)
        assert low is not None and low.accelerator_hours == min(
            capped.accelerator_hours, bound.accelerator_hours
        )
        assert capped.utilisation is not None and capped.utilisation <= 1
