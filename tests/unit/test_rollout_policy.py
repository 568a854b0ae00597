"""The rollout state machine (policy/rollout.py) with an injected clock: launch, steps gated on
the canary's error rate and p99 TTFT against the stable version, holds, rollback, promote,
abort, and a round trip through JSON (what a restarted reconciler resumes from)."""

from __future__ import annotations

import pytest

from xpool.policy.rollout import (
    CanaryObs,
    Gate,
    GateSignals,
    VersionSignals,
    abort,
    advance,
    from_json,
    promote,
    start,
    to_json,
)

READY = CanaryObs(ready=1, loading=0)
GATE = Gate(max_error_rate=0.01, max_ttft_ratio=1.5, ttft_slack_ms=50, min_requests=20)


def healthy(requests: float = 100, ttft: float = 0.2) -> GateSignals:
    return GateSignals(VersionSignals(requests, 0, ttft), VersionSignals(1000, 0, 0.2))


def begun(now: float = 0.0):
    r = start("chat", "1", "2", (5.0, 50.0, 100.0), 60.0, GATE, now, "test")
    return advance(r, now + 10, READY, None)  # the canary is ready: step 1


def test_launch_waits_for_a_ready_canary_then_starts_step_one():
    r = start("chat", "1", "2", (5.0, 50.0, 100.0), 60.0, GATE, 0.0, "test")
    assert r.phase == "launching" and r.weights() == {"1": 100.0, "2": 0.0}
    held = advance(r, 5, CanaryObs(ready=0, loading=1), None)
    assert held.phase == "launching" and "waiting for an instance" in held.reason
    assert advance(held, 6, CanaryObs(ready=0, loading=1), None) is held  # no repeated event
    stepped = advance(held, 10, READY, None)
    assert stepped.phase == "shifting" and stepped.step_started == 10
    assert stepped.weights() == {"1": 95.0, "2": 5.0}


def test_a_step_advances_only_after_its_interval_and_the_gate():
    r = begun()
    assert advance(r, 30, READY, healthy()).step == 0  # 20 s into a 60 s step
    nxt = advance(r, 71, READY, healthy())
    assert nxt.step == 1 and nxt.step_started == 71 and nxt.canary_weight == 50
    assert nxt.history[-1].signals["canary"]["requests"] == 100
    last = advance(nxt, 132, READY, healthy())
    assert last.step == 2 and last.canary_weight == 100 and last.phase == "shifting"
    done = advance(last, 193, READY, healthy())
    assert done.phase == "completed" and done.serving == "2"
    assert [e.event for e in done.history] == ["started", "step", "step", "step", "completed"]


@pytest.mark.parametrize(
    ("canary", "why"),
    [
        (VersionSignals(40, 4, 0.2), "error rate 10.0%"),
        (VersionSignals(40, 0, 0.9), "p99 TTFT 900 ms"),
    ],
)
def test_a_breach_rolls_back_within_the_step(canary: VersionSignals, why: str):
    r = begun()
    out = advance(r, 25, READY, GateSignals(canary, VersionSignals(500, 0, 0.2)))
    assert out.phase == "rolled-back" and why in out.reason, out.reason
    assert out.weights() == {"1": 100.0, "2": 0.0}


def test_error_rate_is_judged_against_the_stable_version():
    r = begun()
    both_bad = GateSignals(VersionSignals(100, 5, 0.2), VersionSignals(1000, 50, 0.2))
    assert advance(r, 71, READY, both_bad).step == 1  # 5 % vs 5 %: not the canary's fault


def test_too_little_traffic_or_missing_signals_hold_the_step():
    r = begun()
    few = advance(r, 71, READY, healthy(requests=3))
    assert few.step == 0 and "3 canary requests of the 20" in few.reason
    assert advance(few, 73, READY, healthy(requests=4)).history == few.history  # one per kind
    blind = advance(r, 71, READY, GateSignals(None, None, ("Prometheus: refused",)))
    assert blind.step == 0 and "gate signals missing" in blind.reason


def test_the_last_step_compares_with_the_stable_baseline():
    r = begun()
    r = advance(r, 71, READY, healthy())
    r = advance(r, 132, READY, healthy())  # at 100 %: the stable version has no traffic
    slow = GateSignals(VersionSignals(100, 0, 0.9), VersionSignals(0, 0, None))
    out = advance(r, 150, READY, slow)
    assert out.phase == "rolled-back" and "stable 200 ms" in out.reason


def test_a_failed_canary_launch_rolls_back():
    r = start("chat", "1", "2", (5.0, 100.0), 60.0, GATE, 0.0, "test")
    out = advance(r, 5, CanaryObs(ready=0, loading=0, failed="weights file corrupt"), None)
    assert out.phase == "rolled-back" and "weights file corrupt" in out.reason


def test_promote_and_abort():
    r = begun()
    assert promote(r, 20).weights() == {"1": 0.0, "2": 100.0}
    aborted = abort(r, 20)
    assert aborted.phase == "aborted" and aborted.weights() == {"1": 100.0, "2": 0.0}
    assert advance(aborted, 500, READY, healthy()) is aborted  # finished: nothing moves


def test_json_round_trip_resumes_the_same_step():
    r = advance(begun(), 71, READY, healthy())
    back = from_json(to_json(r))
    assert back == r
    assert advance(back, 100, READY, healthy()).step == 1  # 29 s into the 60 s step: holds


def test_a_step_waits_for_the_canary_instances_its_weight_needs():
    r = begun()
    short = advance(r, 71, CanaryObs(ready=1, loading=1, wanted=2), healthy())
    assert short.step == 0 and "1 of 2 canary instances ready" in short.reason
    assert advance(short, 80, CanaryObs(ready=2, loading=0, wanted=2), healthy()).step == 1
