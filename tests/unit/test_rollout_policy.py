"""The rollout state machine (policy/rollout.py) with an injected clock: launch sized for the
first step, steps judged at their end by the statistical gate (pass, fail, inconclusive ->
extended -> held), early failure only on overwhelming evidence, the last step against the
stable baseline, capacity before each shift, promote, abort, and a JSON round trip (what a
restarted reconciler resumes from)."""

from __future__ import annotations

import random

from tests.unit.gate_samples import buckets
from xpool.policy.canary_gate import Gate, VersionSignals
from xpool.policy.rollout import (
    CanaryObs,
    GateSignals,
    abort,
    advance,
    from_json,
    promote,
    start,
    to_json,
)

READY = CanaryObs(ready=1, loading=0, wanted=1)
GATE = Gate()  # the defaults: 1.25 x + 50 ms, 1 point of errors, 50 samples, 1%, 2 extensions


def version(n: int, errors: int = 0, added: float = 0.0, seed: int = 1) -> VersionSignals:
    """n attempts with `errors` failed; the rest's TTFT around 200 ms (+ `added`)."""
    rng = random.Random(seed)
    times = [rng.lognormvariate(-1.6, 0.3) + added for _ in range(n - errors)]
    return VersionSignals(n, errors, buckets(times))


def signals(canary: VersionSignals, stable: VersionSignals | None = None) -> GateSignals:
    return GateSignals(canary, stable if stable is not None else version(1000, seed=2))


def begun(now: float = 0.0):
    r = start("chat", "1", "2", (5.0, 50.0, 100.0), 60.0, GATE, now, "test")
    return advance(r, now + 10, READY, None)  # the canary is ready: step 1


def test_launch_waits_for_the_instances_of_the_first_step():
    r = start("chat", "1", "2", (5.0, 50.0, 100.0), 60.0, GATE, 0.0, "test")
    assert r.phase == "launching" and r.weights() == {"1": 100.0, "2": 0.0}
    assert r.next_weights() == {"1": 95.0, "2": 5.0}  # what the policy sizes the canary for
    held = advance(r, 5, CanaryObs(ready=0, loading=1), None)
    assert held.phase == "launching" and "waiting for an instance" in held.reason
    assert advance(held, 6, CanaryObs(ready=0, loading=1), None) is held  # no repeated event
    short = advance(held, 8, CanaryObs(ready=1, loading=1, wanted=2), None)
    assert short.phase == "launching" and "waiting for 2 instance(s)" in short.reason
    stepped = advance(short, 10, READY, None)
    assert stepped.phase == "shifting" and stepped.step_started == 10
    assert stepped.weights() == {"1": 95.0, "2": 5.0}
    assert stepped.next_weights() == {"1": 50.0, "2": 50.0}


def test_an_identical_canary_passes_each_step_at_its_end():
    r = begun()
    assert advance(r, 30, READY, signals(version(100))).step == 0  # 20 s into a 60 s step
    nxt = advance(r, 71, READY, signals(version(100)))
    assert nxt.step == 1 and nxt.step_started == 71 and nxt.canary_weight == 50, nxt.reason
    gate = nxt.history[-1].signals["gate"]
    assert gate["outcome"] == "pass" and {c["name"] for c in gate["checks"]} == {
        "errors",
        "latency",
    }
    assert nxt.history[-1].signals["canary"]["requests"] == 100
    last = advance(nxt, 132, READY, signals(version(500, seed=3)))
    assert last.step == 2 and last.canary_weight == 100 and last.next_weights() is None
    done = advance(last, 193, READY, signals(version(500, seed=4), VersionSignals(0, 0)))
    assert done.phase == "completed" and done.serving == "2", done.reason
    assert [e.event for e in done.history] == ["started", "step", "step", "step", "completed"]


def test_a_slower_canary_fails_at_the_end_of_its_step():
    out = advance(begun(), 71, READY, signals(version(100, added=0.3)))
    assert out.phase == "rolled-back" and "canary TTFT slower than 1.25 x" in out.reason
    assert out.weights() == {"1": 100.0, "2": 0.0}
    check = {c["name"]: c for c in out.history[-1].signals["gate"]["checks"]}["latency"]
    assert check["test"] == "mann-whitney-u" and check["p"] < GATE.final_alpha


def test_a_broken_canary_fails_within_its_step_on_overwhelming_evidence():
    broken = signals(version(60, errors=60))
    out = advance(begun(), 25, READY, broken)  # 15 s into the step
    assert out.phase == "rolled-back" and "error rate 100.0%" in out.reason, out.reason
    # a mildly worse canary is not failed early: only the end of the step may judge it
    mild = advance(begun(), 25, READY, signals(version(60, errors=3)))
    assert mild.active and mild.looked == 60


def test_interim_looks_happen_as_the_sample_doubles():
    r = advance(begun(), 20, READY, signals(version(50)))
    assert r.looked == 50
    assert advance(r, 22, READY, signals(version(90))).looked == 50  # not doubled yet
    assert advance(r, 24, READY, signals(version(100))).looked == 100


def test_error_rate_is_judged_against_the_stable_version():
    both_bad = signals(version(100, errors=5), version(1000, errors=50, seed=2))
    assert advance(begun(), 71, READY, both_bad).step == 1  # 5 % vs 5 %: not the canary's


def test_an_inconclusive_step_is_extended_then_held_for_an_operator():
    few = signals(version(30))  # below the 50 samples each check needs
    r = advance(begun(), 71, READY, few)
    assert r.step == 0 and r.extended == 1 and r.history[-1].event == "extended", r.reason
    assert "30 canary requests of the 50" in r.reason
    assert advance(r, 100, READY, few) == r  # the extension runs its interval (to 130 s)
    r = advance(advance(r, 131, READY, few), 192, READY, few)
    assert r.extended == 3 and r.history[-1].event == "held" and r.exhausted
    assert "inconclusive after 2 extension(s)" in r.reason and "promote" in r.reason
    assert advance(r, 400, READY, few) == r  # held: no more end-of-step looks
    assert advance(r, 400, READY, signals(version(80, errors=80))).phase == "rolled-back"
    assert promote(r, 401).phase == "completed"


def test_missing_signals_hold_the_step():
    blind = advance(begun(), 71, READY, GateSignals(None, None, ("Prometheus: refused",)))
    assert blind.step == 0 and "gate signals missing" in blind.reason


def test_the_last_step_compares_errors_with_the_stable_baseline_and_not_latency():
    """At 100% no stable traffic runs alongside: errors are judged against the baseline (the
    last step with stable traffic); latency is not (it was, at every earlier step), since
    load that changes over time would pass for a regression."""
    r = advance(begun(), 71, READY, signals(version(100)))
    r = advance(r, 132, READY, signals(version(500, seed=3)))  # at 100 %: no stable traffic
    assert r.baseline is not None and r.baseline.requests == 1000
    failing = signals(version(200, errors=20, seed=5), VersionSignals(0, 0))
    out = advance(r, 193, READY, failing)
    assert out.phase == "rolled-back" and "step 3" in out.reason and "error rate" in out.reason
    slower = advance(r, 193, READY, signals(version(200, added=0.4, seed=5), VersionSignals(0, 0)))
    assert slower.phase == "completed", slower.reason
    latency = slower.history[-1].signals["gate"]["checks"][1]
    assert latency["test"] == "none" and "not compared" in latency["reason"]


def test_a_failed_canary_launch_rolls_back():
    r = start("chat", "1", "2", (5.0, 100.0), 60.0, GATE, 0.0, "test")
    out = advance(r, 5, CanaryObs(ready=0, loading=0, failed="weights file corrupt"), None)
    assert out.phase == "rolled-back" and "weights file corrupt" in out.reason


def test_promote_and_abort():
    r = begun()
    assert promote(r, 20).weights() == {"1": 0.0, "2": 100.0}
    aborted = abort(r, 20)
    assert aborted.phase == "aborted" and aborted.weights() == {"1": 100.0, "2": 0.0}
    assert advance(aborted, 500, READY, signals(version(100))) is aborted


def test_json_round_trip_resumes_the_same_step():
    r = advance(begun(), 71, READY, signals(version(100)))
    back = from_json(to_json(r))
    assert back == r and back.baseline is not None and back.baseline.samples == 1000
    assert advance(back, 100, READY, signals(version(100))).step == 1  # 29 s into 60 s


def test_records_written_before_the_statistical_gate_still_load():
    old = to_json(begun())
    old["gate"] = {"max_error_rate": 0.01, "max_ttft_ratio": 1.5, "min_requests": 20}
    old["baseline"] = {"requests": 10.0, "errors": 0.0, "ttft_p99": 0.2}
    old.pop("extended"), old.pop("looked")
    back = from_json(old)
    assert back.gate.max_ttft_ratio == 1.5 and back.baseline is not None
    assert back.baseline.ttft == () and back.extended == 0


def test_a_shift_waits_for_the_canary_instances_the_next_step_needs():
    r = begun()
    short = advance(r, 71, CanaryObs(ready=1, loading=1, wanted=2), signals(version(100)))
    assert short.step == 0 and "1 of the 2 canary instances" in short.reason
    unsized = advance(r, 71, CanaryObs(ready=1, loading=0, wanted=None), signals(version(100)))
    assert unsized.step == 0 and "sizing the canary" in unsized.reason
    ready = CanaryObs(ready=2, loading=0, wanted=2)
    assert advance(short, 80, ready, signals(version(110))).step == 1


def test_a_step_is_judged_only_once_the_canary_has_what_its_weight_calls_for():
    """A shift into a full pool: the canary takes 100% on one instance while its second waits
    for the retired one's room. Until both are ready the step's clock does not run, so the
    canary is not judged at twice the load per instance the stable version had."""
    r = advance(begun(), 71, READY, signals(version(100)))  # the 50 % step, armed at once
    fits = CanaryObs(ready=1, loading=0, wanted=1, needed=1)  # the pool has room for 1 only
    r = advance(r, 132, fits, signals(version(300)))
    assert r.step == 2 and r.armed is False  # shifted to 100 %, not armed yet
    short = CanaryObs(ready=1, loading=1, wanted=None, needed=2)
    waiting = advance(r, 150, short, signals(version(400, added=0.5)))  # overloaded: not judged
    assert (
        waiting.active and waiting.step_started == 150 and "judging starts once" in waiting.reason
    )
    full = CanaryObs(ready=2, loading=0, wanted=None, needed=2)
    armed = advance(waiting, 160, full, signals(version(10)))
    assert armed.armed and armed.step_started == 150  # the last pass that was short
    done = advance(armed, 211, full, signals(version(200, seed=8), VersionSignals(0, 0)))
    assert done.phase == "completed", done.reason


def test_stray_stable_requests_at_100_percent_do_not_replace_the_baseline():
    r = advance(begun(), 71, READY, signals(version(100)))
    r = advance(r, 132, READY, signals(version(500, seed=3)))  # now at 100 %
    stray = signals(version(200, seed=9), version(3, seed=10))  # 3 requests of the shift
    done = advance(r, 193, READY, stray)
    assert done.phase == "completed", done.reason
    assert done.history[-1].signals["stable"]["requests"] == 1000  # judged on the baseline
