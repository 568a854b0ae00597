"""`autoscaling.mode: slo`: the SLO target from the queueing model (hand-checked on M/M/c),
its directions and bounds, the decisions that reach it, and the band left as it was."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tests.unit.policy_world import model, ready
from xpool.policy.autoscale import autoscale
from xpool.policy.queueing import erlang_c, wait_quantile
from xpool.policy.slo_target import SloNeed, slo_need
from xpool.policy.spec import ScalingSpec
from xpool.policy.state import InstanceObs, LoadObs, ModelMemory

SLO = ScalingSpec(interval=30, stabilization=300, mode="slo", slo_headroom=0.0)
# 2 slots per instance; 100-token prompts prefill in 0.1 s, 100-token answers decode in
# 100 x 2 / 200 = 1 s: each request holds its slot 1.1 s; SLO: p99 TTFT within 0.5 s
CHAT = replace(
    model("chat", "P0", lo=1, hi=40),
    request_limit=2,
    prefill_tokens_per_s=1000.0,
    decode_tokens_per_s=200.0,
    ttft_slo=0.5,
    slo_quantile=0.99,
)


def _load(qps: float, cv2: float | None = 1.0) -> LoadObs:
    return LoadObs(
        qps=qps,
        prompt_tokens_per_s=100 * qps,
        completion_tokens_per_s=100 * qps,
        arrival_cv2=cv2,
    )


def _ready(n: int) -> list[InstanceObs]:
    return [ready(f"chat--1--{i}") for i in range(1, n + 1)]


def _need(qps: float, **changes: object) -> SloNeed:
    need = slo_need(replace(CHAT, **changes), SLO, _load(qps), 1)  # type: ignore[arg-type]
    assert isinstance(need, SloNeed)
    return need


def test_target_is_the_fewest_instances_meeting_the_slo_by_hand() -> None:
    """M/M/c with c = 2 x instances, a = 8 QPS x 1.1 s = 8.8 erlangs: the p99 TTFT
    ln(C / 0.01) / (c / 1.1 - 8) + 0.1 s is 0.53 s at 7 instances and 0.21 s at 8."""

    def ttft(instances: int) -> float:
        c = 2 * instances
        waits = erlang_c(c, 8.8)
        wait = 0.0 if waits <= 0.01 else math.log(waits / 0.01) / (c / 1.1 - 8)
        return wait + 0.1

    assert ttft(7) == pytest.approx(0.531, abs=1e-3) and ttft(8) == pytest.approx(0.211, abs=1e-3)
    need = _need(8.0)
    assert (need.instances, need.met) == (8, True)
    assert need.ttft == pytest.approx(ttft(8))
    assert need.inputs["serviceSeconds"] == pytest.approx(1.1)


def test_more_load_or_a_tighter_slo_never_needs_fewer_instances() -> None:
    last = 0
    for qps in (0.1, 0.5, 1, 2, 4, 8, 12, 16, 24, 30):
        n = _need(qps).instances
        assert n >= last
        last = n
    last = 0
    for slo in (2.0, 1.0, 0.5, 0.3, 0.2, 0.15, 0.11):
        n = _need(8.0, ttft_slo=slo).instances
        assert n >= last
        last = n
    burstier = [slo_need(CHAT, SLO, _load(8.0, cv2), 1) for cv2 in (0.0, 0.5, 1.0, 4.0, 16.0, 64.0)]
    counts = [n.instances for n in burstier if isinstance(n, SloNeed)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_target_stays_within_instances_min_and_max() -> None:
    assert _need(0.0, min=3).instances == 3  # no arrivals: the floor
    over = _need(30.0, max=10)  # 33 erlangs on 20 slots
    assert (over.instances, over.met, over.ttft) == (10, False, math.inf)
    assert over.describe(CHAT, 1).startswith("slo: p99 TTFT overloaded predicted at 1 ready")


def test_without_measured_variability_arrivals_are_taken_as_poisson() -> None:
    measured = slo_need(CHAT, SLO, _load(8.0, 1.0), 1)
    assumed = slo_need(CHAT, SLO, _load(8.0, None), 1)
    assert isinstance(measured, SloNeed) and isinstance(assumed, SloNeed)
    assert measured.instances == assumed.instances
    assert assumed.inputs["arrivalCv2Measured"] is False


def test_headroom_sizes_for_more_arrivals() -> None:
    roomy = slo_need(CHAT, replace(SLO, slo_headroom=0.5), _load(8.0), 1)
    assert isinstance(roomy, SloNeed) and roomy.instances > _need(8.0).instances
    assert roomy.inputs["arrivalsPerS"] == 12.0


def test_scale_up_to_the_target_by_step_and_says_so() -> None:
    out = autoscale(CHAT, SLO, _ready(2), _load(8.0), ModelMemory(), 100.0)
    assert out.desired == 3
    assert out.inputs["sizedOn"] == "slo" and out.inputs["slo"]["predictedTtftMs"] < 500
    assert out.reason.startswith("slo: p99 TTFT overloaded predicted at 2 ready, ")
    assert out.reason.endswith(
        "211 ms at 8 (within 500 ms; 8 arrivals/s sized, arrival cv2 1)"
        "; 8 needed, 1 more per scaleUp.interval"
    )
    fast = autoscale(CHAT, replace(SLO, step=10), _ready(2), _load(8.0), ModelMemory(), 100.0)
    assert fast.desired == 8


def test_scale_down_waits_the_window_and_keeps_its_largest_target() -> None:
    memory = ModelMemory()
    for now, qps in ((0.0, 8.0), (100.0, 2.0), (200.0, 1.0)):
        out = autoscale(CHAT, SLO, _ready(10), _load(qps), memory, now)
        assert out.desired == 10 and "of scaleDown.stabilization 300 s" in out.reason
        memory = out.memory
    assert memory.low_need == 8  # the 8 QPS pass's target
    out = autoscale(CHAT, SLO, _ready(10), _load(1.0), memory, 300.0)
    assert out.desired == 8 and out.memory.low_since is None and out.memory.low_need is None
    assert "8 needed at most for 300 s" in out.reason


def test_scale_down_holds_on_missing_metrics_and_while_loading() -> None:
    missing = replace(_load(1.0), missing=("arrival cv2 (no series)",))
    out = autoscale(CHAT, SLO, _ready(10), missing, ModelMemory(low_since=0.0), 400.0)
    assert out.desired == 10 and out.reason.startswith("metrics missing")
    loading = [*_ready(9), InstanceObs("chat--1--10", "chat", "1", "loading", 390.0)]
    out = autoscale(CHAT, SLO, loading, _load(1.0), ModelMemory(low_since=0.0), 400.0)
    assert out.desired == 10 and out.memory.low_since is None


@pytest.mark.parametrize(
    ("changes", "load", "why"),
    [
        ({"prefill_tokens_per_s": None}, _load(8.0), "no prefill token figures"),
        ({}, replace(_load(8.0), completion_tokens_per_s=None), "no completion token rate"),
        ({"ttft_slo": 0.05}, _load(8.0), "prefill alone takes 100 ms >= slo.ttftMs 50"),
        # every request refused: 429s count as requests, no answer brought tokens
        (
            {},
            LoadObs(qps=8.0, prompt_tokens_per_s=0.0, completion_tokens_per_s=0.0),
            "requests without answered tokens",
        ),
    ],
)
def test_models_the_queue_cannot_size_keep_the_band(
    changes: dict[str, object], load: LoadObs, why: str
) -> None:
    spec = replace(CHAT, **changes)  # type: ignore[arg-type]
    band = autoscale(spec, replace(SLO, mode="band"), _ready(2), load, ModelMemory(), 100.0)
    out = autoscale(spec, SLO, _ready(2), load, ModelMemory(), 100.0)
    assert out.desired == band.desired and out.inputs["sizedOn"] == band.inputs["sizedOn"]
    assert out.reason.startswith(band.reason) and why in out.reason


def test_the_default_mode_is_the_band() -> None:
    """The same pass in the default mode: the token band, SLO settings ignored."""
    assert ScalingSpec().mode == "band"
    out = autoscale(CHAT, replace(SLO, mode="band"), _ready(2), _load(8.0), ModelMemory(), 100.0)
    assert out.inputs["sizedOn"] == "tokens" and "slo" not in out.inputs
    assert out.reason.startswith("decode 800 tok/s > 80% of 400 tok/s (2 ready x 200)")


def test_slots_share_their_instance_prefill_compute() -> None:
    """3.5 QPS of 500-token prompts at 1,000 prefill tokens/s: 1.75 instances of prefill
    compute, though 64 slots of 0.6 s each would take them on one instance."""
    wide = replace(CHAT, request_limit=64, ttft_slo=2.0, decode_tokens_per_s=1e5)
    load = LoadObs(qps=3.5, prompt_tokens_per_s=1750, completion_tokens_per_s=350, arrival_cv2=1)
    need = slo_need(wide, SLO, load, 1)
    assert isinstance(need, SloNeed) and need.instances == 2


@pytest.mark.parametrize("cv2", [0.0, 1.0, 9.0, 50.0])
def test_search_finds_what_trying_every_count_finds(cv2: float) -> None:
    """Against the predicted TTFT of every instance count in turn, from instances.min."""
    spec = replace(CHAT, min=2, max=60)
    for qps in (0.0, 0.3, 3.0, 9.0, 17.0, 40.0, 60.0):
        need = slo_need(spec, SLO, _load(qps, cv2), 1)
        assert isinstance(need, SloNeed)
        within = [
            n
            for n in range(spec.min, spec.max + 1)
            if wait_quantile(2 * n, qps, 1.1, cv2, 1.0, 0.99) + 0.1 <= 0.5
        ]
        assert need.instances == (within[0] if within else spec.max), (qps, cv2)
