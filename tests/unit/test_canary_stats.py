"""The canary gate's statistics (policy/canary_stats.py, policy/canary_gate.py) against
scipy's reference implementations on the same data, and the gate's three outcomes."""

from __future__ import annotations

import random

import pytest
from scipy.stats import binom, mannwhitneyu

from tests.unit.gate_samples import buckets
from xpool.policy.canary_gate import Gate, VersionSignals, judge
from xpool.policy.canary_stats import (
    binomial_tail,
    errors_exceed,
    from_cumulative,
    mann_whitney_slower,
    quantile,
)


def middles(hist: tuple[tuple[float, int], ...], ratio: float = 1.0, slack: float = 0.0):
    """The values the test ranks: each bucket's middle, as many times as it counts."""
    out, lower = [], 0.0
    for upper, count in hist:
        mid = lower * 1.25 if upper == float("inf") else (lower + upper) / 2
        out.extend([ratio * mid + slack] * count)
        lower = upper
    return out


def times(n: int, seed: int, added: float = 0.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-1.6, 0.4) + added for _ in range(n)]


@pytest.mark.parametrize(
    ("ratio", "slack", "added"), [(1.0, 0.0, 0.0), (1.0, 0.0, 0.03), (1.25, 0.05, 0.3)]
)
def test_mann_whitney_matches_scipy_on_the_bucketed_times(ratio, slack, added):
    canary, stable = buckets(times(80, 1, added)), buckets(times(300, 2))
    ours = mann_whitney_slower(canary, stable, ratio=ratio, slack=slack)
    ref = mannwhitneyu(
        middles(canary),
        middles(stable, ratio, slack),
        alternative="greater",
        method="asymptotic",
        use_continuity=True,
    )
    assert ours.u == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("x", "n", "p"), [(3, 50, 0.01), (0, 10, 0.3), (2, 1000, 0.001), (600, 10000, 0.05)]
)
def test_binomial_tail_matches_scipy(x, n, p):
    assert binomial_tail(x, n, p) == pytest.approx(binom.sf(x - 1, n, p), rel=1e-9)


def test_a_handful_of_errors_is_not_overstated():
    # 3 errors in 50 against a stable 0% + 1 point margin: 1.4% likely, not "significant"
    t = errors_exceed(3, 50, 0, 1000, 0.01)
    assert t.p == pytest.approx(0.0138, abs=1e-4)


def test_prometheus_buckets_become_whole_counts_per_bucket():
    cumulative = [(0.1, 2.4), (0.2, 5.6), (float("inf"), 9.1), (0.05, 0.0)]
    assert from_cumulative(cumulative) == ((0.05, 0), (0.1, 2), (0.2, 4), (float("inf"), 3))
    assert quantile(((0.1, 0), (0.2, 10), (float("inf"), 0)), 0.5) == pytest.approx(0.15)


def test_an_identical_canary_passes_a_slower_one_fails_a_small_sample_is_inconclusive():
    gate = Gate()
    stable = VersionSignals(400, 0, buckets(times(400, 2)))
    same = judge(gate, VersionSignals(100, 0, buckets(times(100, 3))), stable, gate.final_alpha)
    assert same.outcome == "pass", same.reason
    slow = VersionSignals(100, 0, buckets(times(100, 3, added=0.3)))
    assert judge(gate, slow, stable, gate.final_alpha).outcome == "fail"
    few = judge(gate, VersionSignals(30, 0, buckets(times(30, 3))), stable, gate.final_alpha)
    assert few.outcome == "inconclusive" and "30 canary requests of the 50" in few.reason
    # slower than the stable version, but within the tolerance (1.25 x + 50 ms): passes
    within = VersionSignals(100, 0, buckets(times(100, 3, added=0.04)))
    assert judge(gate, within, stable, gate.final_alpha).outcome == "pass"


def test_errors_beyond_the_margin_fail_and_are_reported():
    gate = Gate()
    stable = VersionSignals(400, 0, buckets(times(400, 2)))
    bad = VersionSignals(200, 20, buckets(times(180, 3)))
    verdict = judge(gate, bad, stable, gate.final_alpha)
    assert verdict.outcome == "fail" and "error rate 10.0%" in verdict.reason
    out = verdict.to_json()
    errors = next(c for c in out["checks"] if c["name"] == "errors")
    assert errors["test"] == "exact-binomial" and errors["p"] < gate.final_alpha


def test_identical_versions_rarely_fail_a_step():
    """The gate's false-failure rate on identical distributions stays within its budget
    (200 simulated steps at the end-of-step significance)."""
    gate = Gate()
    failures = 0
    for seed in range(200):
        canary = VersionSignals(60, 0, buckets(times(60, 1000 + seed)))
        stable = VersionSignals(200, 0, buckets(times(200, 5000 + seed)))
        failures += judge(gate, canary, stable, gate.final_alpha).outcome == "fail"
    assert failures <= 2
