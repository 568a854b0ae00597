"""The per-instance QPS bound: min(decode-, prefill-, whole-request-limited), each worked by hand
on the design article's platform (examples/platform.yaml) and on DeepSeek-R1."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES
from xpool.capacity.plan import ModelPlan, plan_platform
from xpool.capacity.throughput import (
    compute_parameters,
    experts_read_per_step,
    prefill_flops,
)
from xpool.catalog.architectures import architectures
from xpool.config.loader import load_platform

ARCH = architectures()


@pytest.fixture(scope="module")
def article() -> dict[tuple[str, str], ModelPlan]:
    loaded = load_platform(EXAMPLES / "platform.yaml")
    plan = plan_platform(loaded.platform, loaded.architectures)
    return {(r.model, r.pool): r for r in plan.models if r.version == "1.0.0"}


def test_prefill_flops_of_the_article_prompt():
    qwen32 = ARCH["deepseek-r1-distill-qwen-32b"]
    # 32,763,876,352 parameters less the embedding lookup and the LM head, which vLLM
    # applies only to the sampled position: 2 x 152,064 x 5,120 = 1,557,135,360
    assert compute_parameters(qwen32) == 31_206_740_992
    # a 2,016-token prompt (seqLen 2,048 - outputTokens 32): 2 x 31,206,740,992 x 2,016 +
    # one LM head row 2 x 778,567,680 = 125,827,136,815,104 FLOPs
    assert prefill_flops(qwen32, 2016) == 125_827_136_815_104


def test_article_model_on_one_910b_is_prefill_bound(article):
    row = article[("qa-chat", "ascend910b")]
    bounds = row.qps_bounds
    # INT8 weights may run W8A8 at the 910B's 640 INT8 TOPS: 1.2583e14 / 640e12 = 0.19661 s
    # per prompt -> at most 5.086 requests/s (BF16's 320 TFLOPS: 2.543; the issue's "about
    # 2.4 / 4.8" also counted the embedding lookup and every position's LM head as compute).
    assert (bounds.compute, bounds.prefill) == ("INT8", pytest.approx(5.0863, abs=1e-4))
    # decode at batch 8: weights 35,068,454,912 B + KV 8 x 2,048 x 262,144 = 4,294,967,296 B
    # read per step over 1.6 TB/s = 24.60 ms -> floor(8 / 0.024602) = 325 tokens/s; 32-token
    # answers -> 325 / 32 = 10.156 requests/s
    assert (row.decode_tokens_per_second_bound, bounds.decode) == (325, 10.15625)
    # a request holds one of 8 slots for 0.19661 s + 32 x 8 / 325 s = 0.98430 s -> 8.128
    assert bounds.request == pytest.approx(8.1276, abs=1e-4)
    assert (row.qps_bound, bounds.limited_by) == (bounds.prefill, "prefill")
    # the article's 18 per instance is 3.5x what the NPU can compute
    assert row.qps_per_instance == 18 and row.qps_source == "measured"


def test_article_model_on_rtx_5090_now_warned_too(article):
    row = article[("qa-chat", "rtx5090")]
    bounds = row.qps_bounds
    # TP 2 x 838 INT8 TOPS: 1.2583e14 / 1.676e15 = 75.08 ms -> 13.32 requests/s
    assert bounds.prefill == pytest.approx(13.3199, abs=1e-4)
    # decode: (35,068,454,912 + 4,294,967,296) / 2 B per rank per step / 1.792 TB/s =
    # 10.983 ms -> floor(728.4) = 728 tokens/s -> 22.75 requests/s; a request: 0.07508 s +
    # 32 x 8 / 728 s = 0.42672 s per slot -> 18.75
    assert (bounds.decode, bounds.request) == (22.75, pytest.approx(18.7475, abs=1e-4))
    # the article's 20 QPS exceeds both the prefill and the request bound: before, only the
    # decode bound (24.2 then) was checked and this passed without a word


def test_estimate_without_a_measurement_stays_within_compute(article):
    row = article[("summary", "rtx5090")]
    # Qwen2.5-14B BF16, prompt 2,048 - 128 = 1,920: (2 x 13,212,898,304 x 1,920 + 2 x
    # 778,567,680) FLOPs / (2 x 209.5 TFLOPS) = 0.12110 s -> 8.258 requests/s at 100% of the
    # RTX 5090's BF16 peak. The old estimate, 0.5 x the decode bound alone, was 10.56: more
    # than the cards can compute. Now: 0.5 x min(21.1, 8.258, 19.55) = 4.129.
    assert row.qps_bounds.prefill == pytest.approx(8.2579, abs=1e-4)
    assert row.qps_per_instance == pytest.approx(4.1290, abs=1e-4)
    assert row.qps_source == "roofline estimate"
    # 30 x 1.2 / 4.129 -> 9 instances of TP 2 (was 4)
    assert (row.tp, row.instances_needed) == (2, 9)


def test_moe_decode_reads_the_experts_the_batch_routes_to():
    r1 = ARCH["deepseek-r1"]
    # one token: its 8 experts; 32 tokens under balanced routing: 256 x (1 - (1 - 8/256)^32)
    assert experts_read_per_step(r1, 1) == pytest.approx(8.0)
    assert experts_read_per_step(r1, 32) == pytest.approx(163.31, abs=0.01)
    # prefill computes with the 37.55B active parameters, less embedding and LM head
    # (2 x 129,280 x 7,168 = 1,853,358,080): 35,698,939,392
    assert compute_parameters(r1) == 35_698_939_392


def test_deepseek_r1_on_910b_and_h200():
    rows = {}
    for name in ("deepseek-r1-ascend-910b", "deepseek-r1-nvidia"):
        loaded = load_platform(EXAMPLES / f"{name}.yaml")
        rows[name] = plan_platform(loaded.platform, loaded.architectures).models[0]
    ascend, h200 = rows["deepseek-r1-ascend-910b"], rows["deepseek-r1-nvidia"]
    # MLA: 70,272 B/token on each of the 8 ranks; batch 32 x 4,096 = 131,072 tokens ->
    # 9,210,691,584 B per rank (8.6 GiB), not an eighth of it
    for row in (ascend, h200):
        assert row.tp == 8
        assert row.footprint.kv_bytes_for_context_per_accelerator == 9_210_691_584
    # INT4 (AWQ layout) 351,522,112,256 B / 8 = 43.9e9 per NPU; FP8 672,987,409,312 B / 8
    assert (ascend.footprint.weight_bytes, h200.footprint.weight_bytes) == (
        351_522_112_256,
        672_987_409_312,
    )
    # prefill of 2,560 prompt tokens: (2 x 35,698,939,392 x 2,560 + 2 x 926,679,040) =
    # 1.8278e14 FLOPs over 8 x 640 INT8 TOPS = 35.70 ms -> 28.01/s; over 8 x 1,979 FP8 TFLOPS
    # -> 86.62/s. Decode is the limit: 1,536-token answers.
    assert ascend.qps_bounds.prefill == pytest.approx(28.0118, abs=1e-4)
    assert h200.qps_bounds.prefill == pytest.approx(86.6182, abs=1e-3)
    assert ascend.qps_bounds.limited_by == h200.qps_bounds.limited_by == "request"
