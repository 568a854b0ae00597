"""The arrival variability the simulator hands the policy in `autoscaling.mode: slo`: the
index of dispersion of 30 s counts over 10 minutes, as the reconciler's PromQL computes it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.unit.policy_world import model, spec_of
from xpool.policy.actions import Action
from xpool.policy.spec import ScalingSpec
from xpool.policy.state import Observation
from xpool.sim.dispersion import ArrivalCounts
from xpool.sim.engine import Options, run_requests
from xpool.sim.load import RequestLoad
from xpool.sim.requests import Request
from xpool.sim.service import Service


def _cv2(times: list[float], upto: float = 600.0) -> float | None:
    counts = ArrivalCounts()
    for t in times:
        counts.add(t, 1)
    return counts.cv2(upto)


def test_evenly_spaced_arrivals_have_no_dispersion() -> None:
    assert _cv2([i * 0.5 for i in range(1200)]) == 0.0


def test_poisson_arrivals_have_dispersion_near_one() -> None:
    rng = random.Random(7)
    found = []
    for _ in range(50):
        t, times = 0.0, []
        while t < 600:
            times.append(t)
            t += rng.expovariate(5.0)
        found.append(_cv2(times))
    assert sum(found) / len(found) == pytest.approx(1.0, abs=0.1)  # type: ignore[arg-type]


def test_bursts_have_large_dispersion_and_no_arrivals_none() -> None:
    """300 requests at once every 5 minutes: counts of 300 in 2 bins of 20."""
    cv2 = _cv2([0.0] * 300 + [300.0] * 300)
    assert cv2 == pytest.approx((2 * 270**2 + 18 * 30**2) / 20 / 30)
    assert _cv2([], 600.0) is None


def test_only_the_last_ten_whole_minutes_count() -> None:
    counts = ArrivalCounts()
    counts.add(10.0, 1000)  # an old burst
    for i in range(1200):
        counts.add(600 + i * 0.5, 1)
    assert counts.cv2(1200.0) == 0.0
    counts.add(1215.0, 50)  # the bin still filling is not read
    assert counts.cv2(1229.0) == 0.0


class _Recorder:
    """Answers nothing; keeps what each pass observed."""

    name = "recorder"
    interval = 15.0
    acts = True  # it must observe

    def __init__(self) -> None:
        self.seen: list[Observation] = []

    def step(self, obs: Observation) -> Sequence[Action]:
        self.seen.append(obs)
        return ()


def _observed_cv2(mode: str) -> list[float | None]:
    svc = Service("chat", "P0", "p", 1, 8, 10.0, 1e-4, 0.02, 100, 32, 0.5, 0.2)
    spec = spec_of([model("chat", "P0")], scaling=replace(ScalingSpec(), mode=mode))
    gap = 0.25
    load = RequestLoad(
        lambda: (Request(i * gap, "chat", 100, 32) for i in range(int(1200 / gap))), 1200.0
    )
    recorder = _Recorder()
    run_requests(spec, {"chat": svc}, load, recorder, {"chat": 2}, Options())
    return [obs.load["chat"].arrival_cv2 for obs in recorder.seen]


def test_the_simulator_observes_it_in_mode_slo_only() -> None:
    seen = _observed_cv2("slo")
    assert seen[0] is None and seen[-1] == 0.0  # evenly spaced once there are arrivals
    assert set(_observed_cv2("band")) == {None}
