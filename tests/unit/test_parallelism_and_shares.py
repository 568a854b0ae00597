"""TP degree choice and whole-accelerator tier shares."""

from __future__ import annotations

from xpool.capacity.parallelism import valid_tp_degrees
from xpool.capacity.shares import tier_accelerators
from xpool.catalog.architectures import architectures
from xpool.config.models import Tier, default_tiers

ARCH = architectures()


def test_tp_degrees_divide_heads():
    # 40 query heads, 8 KV heads: 1, 2, 4, 8 all divide both.
    assert valid_tp_degrees(ARCH["deepseek-r1-distill-qwen-32b"], 8) == [1, 2, 4, 8]
    # Qwen2.5-7B: 28 query heads, 4 KV heads -> 8 does not divide 28.
    assert valid_tp_degrees(ARCH["qwen2.5-7b-instruct"], 8) == [1, 2, 4]
    # GLM-4-9B: 32 heads, 2 KV groups -> TP 4 and 8 replicate KV heads (vLLM allows it).
    assert valid_tp_degrees(ARCH["glm-4-9b-chat"], 8) == [1, 2, 4, 8]


def test_tp_stays_within_a_node():
    assert valid_tp_degrees(ARCH["llama-3.1-70b-instruct"], 4) == [1, 2, 4]


def test_default_tiers_on_16_accelerators_use_them_all():
    split = tier_accelerators(default_tiers(), 16)
    assert {k: v.deserved for k, v in split.items()} == {"P0": 6, "P1": 5, "P2": 5}
    assert split["P0"].guarantee == 3  # 20% of 16 = 3.2, rounded down
    assert split["P2"].guarantee == 0


def test_ties_go_to_higher_priority():
    tiers = [
        Tier(name="low", share=0.5, priority=1),
        Tier(name="high", share=0.5, priority=10),
    ]
    split = tier_accelerators(tiers, 3)
    assert split["high"].deserved == 2 and split["low"].deserved == 1


def test_shares_below_one_leave_accelerators_unassigned():
    tiers = [Tier(name="a", share=0.25, priority=1), Tier(name="b", share=0.25, priority=2)]
    split = tier_accelerators(tiers, 8)
    assert split["a"].deserved + split["b"].deserved == 4
