"""Sizing on tokens: long requests scale up where QPS would not, short ones scale down where
QPS would hold, and without token figures every decision is the QPS one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.policy_world import model, ready
from xpool.policy.autoscale import autoscale
from xpool.policy.spec import ScalingSpec
from xpool.policy.state import LoadObs, ModelMemory

SCALING = ScalingSpec(interval=30, stabilization=300)
# 10 QPS per instance at the reference request, 20k prompt and 2k generated tokens/s
CHAT = replace(model("chat", "P0"), prefill_tokens_per_s=2e4, decode_tokens_per_s=2e3)


def _ready(n: int) -> list:
    return [ready(f"chat--1--{i}") for i in range(1, n + 1)]


def test_long_prompts_scale_up_where_qps_would_not() -> None:
    # 7 QPS of 5,000-token prompts: 35% of two instances' QPS, 88% of their prefill
    load = LoadObs(qps=7, prompt_tokens_per_s=3.5e4, completion_tokens_per_s=700)
    out = autoscale(CHAT, SCALING, _ready(2), load, ModelMemory(), 100.0)
    assert out.desired == 3
    assert out.reason == "prefill 3.5e+04 tok/s > 80% of 4e+04 tok/s (2 ready x 2e+04)"
    assert out.inputs["sizedOn"] == "tokens" and out.inputs["promptTokensPerS"] == 3.5e4
    qps_only = autoscale(model("chat", "P0"), SCALING, _ready(2), load, ModelMemory(), 100.0)
    assert (qps_only.desired, qps_only.reason) == (2, "load within the scaling band")


def test_long_answers_move_it_on_decode_and_size_to_the_larger_need() -> None:
    load = LoadObs(qps=4, prompt_tokens_per_s=1e3, completion_tokens_per_s=1.2e4)
    out = autoscale(
        replace(CHAT, max=20), replace(SCALING, step=10), _ready(2), load, ModelMemory(), 0.0
    )
    # 12,000 / (80% x 2,000) = 7.5 -> 8 instances
    assert out.desired == 8
    assert out.reason.startswith("decode 1.2e+04 tok/s > 80% of 4e+03 tok/s (2 ready x 2e+03)")


def test_short_requests_scale_down_where_qps_would_hold() -> None:
    # 20 QPS on 4 instances is 50% of their QPS; of their tokens, 5% and 10%
    load = LoadObs(qps=20, prompt_tokens_per_s=4e3, completion_tokens_per_s=800)
    memory = ModelMemory(low_since=0.0)
    out = autoscale(CHAT, SCALING, _ready(4), load, memory, 400.0)
    # to the midpoint (55%): 800 / (55% x 2,000) -> 1 instance
    assert out.desired == 1
    assert out.reason == (
        "prefill 4e+03 tok/s < 30% of 8e+04 tok/s (4 ready x 2e+04); "
        "decode 800 tok/s < 30% of 8e+03 tok/s (4 ready x 2e+03) for 400 s"
    )
    qps_only = autoscale(model("chat", "P0"), SCALING, _ready(4), load, memory, 400.0)
    assert qps_only.desired == 4


@pytest.mark.parametrize(
    "load",
    [
        LoadObs(qps=9),  # no token series read
        LoadObs(qps=9, prompt_tokens_per_s=5e4),  # an LLM needs both rates
        LoadObs(qps=1, completion_tokens_per_s=1e4),
        LoadObs(missing=("qps",)),
    ],
)
def test_without_token_figures_decisions_are_the_qps_ones(load: LoadObs) -> None:
    for instances, memory, now in (
        (_ready(1), ModelMemory(), 100.0),
        (_ready(4), ModelMemory(low_since=0.0), 400.0),
    ):
        tokens = autoscale(CHAT, SCALING, instances, load, memory, now)
        qps = autoscale(model("chat", "P0"), SCALING, instances, load, memory, now)
        assert (tokens.desired, tokens.reason, tokens.memory) == (
            qps.desired,
            qps.reason,
            qps.memory,
        )
        assert tokens.inputs["sizedOn"] == "qps"


def test_encoders_size_on_prompt_tokens_alone() -> None:
    embed = replace(model("embed", "P1"), prefill_tokens_per_s=5e4)
    load = LoadObs(qps=2, prompt_tokens_per_s=9e4)
    out = autoscale(embed, SCALING, [ready("embed--1--1")], load, ModelMemory(), 0.0)
    assert out.desired == 2
    assert out.reason == (
        "prefill 9e+04 tok/s > 80% of 5e+04 tok/s (1 ready x 5e+04); "
        "3 needed, 1 more per scaleUp.interval"
    )
