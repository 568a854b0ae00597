"""Architectures read from real config.json files (tests/data/hf-configs, sources in its
README): parameters, weight bytes, KV bytes per token, TP. Every expected figure is worked by
hand in a comment, checked against the checkpoint's published size where there is one and
against vLLM 0.10's KV formulas: GQA 2 x max(1, kv_heads // tp) x head_size x B per layer;
MLA (kv_lora_rank + qk_rope_head_dim) x B per layer on every rank (vllm/config/__init__.py
get_num_kv_heads, get_head_size; vllm/v1/kv_cache_interface.py page_size_bytes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xpool.capacity.kv_cache import kv_bytes_for_context
from xpool.capacity.memory import (
    kv_bytes_per_token,
    kv_bytes_per_token_per_accelerator,
    weight_bytes,
)
from xpool.capacity.parallelism import valid_tp_degrees
from xpool.capacity.plan import plan_version
from xpool.catalog.accelerators import accelerators
from xpool.catalog.architectures import Architecture, ConfigJsonError, architectures
from xpool.catalog.hf_config import from_hf_config
from xpool.config.loader import load_platform
from xpool.config.models import Context, Platform
from xpool.errors import InputError

CONFIGS = Path(__file__).parent.parent / "data" / "hf-configs"
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def config(name: str) -> dict[str, Any]:
    return json.loads((CONFIGS / name / "config.json").read_text(encoding="utf-8"))


def arch(name: str, **changes: Any) -> Architecture:
    return from_hf_config({**config(name), **changes}, key=name, source=name)


def without(name: str, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in config(name).items() if k not in keys}


# --- dense, sliding window ----------------------------------------------------------------


def test_mistral_7b_parameters_equal_its_checkpoint():
    mistral = arch("mistralai__Mistral-7B-v0.1")
    # per layer: q, o 4,096 x 4,096 = 33,554,432; k, v 4,096 x 1,024 = 8,388,608;
    # gate, up, down 3 x 4,096 x 14,336 = 176,160,768; 2 RMSNorms 8,192 -> 218,112,000
    # x 32 = 6,979,584,000; embeddings + untied LM head 2 x 32,000 x 4,096 = 262,144,000;
    # final norm 4,096 -> 7,241,732,096. x 2 B = 14,483,464,192 = model.safetensors.index.json
    # total_size of the checkpoint, to the byte.
    assert mistral.parameters == 7_241_732_096
    assert weight_bytes(mistral, "bf16") == 14_483_464_192
    # vLLM: 2 x 8 KV heads x 128 x 2 B x 32 layers = 131,072 B per token
    assert kv_bytes_per_token(mistral, "bf16") == 131_072


def test_mistral_window_caches_the_window_not_the_32k_context():
    mistral = arch("mistralai__Mistral-7B-v0.1")
    assert (mistral.sliding_window.tokens, mistral.sliding_window.layers) == (4096, 32)
    context = Context(batch=2, seq_len=32_768, max_batched_tokens=8192)
    # every layer holds min(2 x 32,768, 2 x (4,096 - 1) + 8,192) = 16,382 tokens (vLLM:
    # min(sliding_window - 1 + max_num_batched_tokens, max_model_len) per request):
    # 16,382 x 32 layers x 4,096 B (2 x 8 x 128 x 2) = 2,147,221,504 B, not 65,536 x 131,072
    # = 8,589,934,592 B for the whole context.
    assert kv_bytes_for_context(mistral, "bf16", context) == 2_147_221_504
    full = arch("mistralai__Mistral-7B-v0.1", sliding_window=None)
    assert kv_bytes_for_context(full, "bf16", context) == 8_589_934_592


def test_qwen25_05b_tied_embeddings_counted_once_and_unused_window_ignored():
    qwen = arch("Qwen__Qwen2.5-0.5B")
    # per layer: q, o 896 x 896 = 802,816 each; k, v 896 x 128 = 114,688 each; q/k/v biases
    # (14 + 2 x 2) x 64 = 1,152; MLP 3 x 896 x 4,864 = 13,074,432; norms 1,792 -> 14,912,384
    # x 24 = 357,897,216; one tied 151,936 x 896 embedding 136,134,656; final norm 896.
    assert qwen.tie_word_embeddings
    assert qwen.parameters == 494_032_768
    # sliding_window 32768 with use_sliding_window false: transformers nulls it
    assert qwen.sliding_window is None
    # vLLM: 2 x 2 x 64 x 2 B x 24 layers = 12,288
    assert kv_bytes_per_token(qwen, "bf16") == 12_288


QWEN25_32B = {
    "model_type": "qwen2",
    "num_hidden_layers": 64,
    "hidden_size": 5120,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "intermediate_size": 27648,
    "vocab_size": 152064,
}
GLM4_9B = {
    "model_type": "chatglm",
    "num_layers": 40,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "multi_query_attention": True,
    "multi_query_group_num": 2,
    "kv_channels": 128,
    "ffn_hidden_size": 13696,
    "padded_vocab_size": 151552,
    "add_qkv_bias": True,
}


@pytest.mark.parametrize(
    ("catalog_key", "data"),
    [("qwen2.5-32b-instruct", QWEN25_32B), ("glm-4-9b-chat", GLM4_9B)],
)
def test_config_reproduces_catalogued_dense_entries_exactly(catalog_key, data):
    # the catalog's counts match the checkpoints; q/k/v biases ((heads + 2 x KV heads) x
    # head_dim per layer: Qwen2 always, GLM with add_qkv_bias) are counted too
    catalogued = architectures()[catalog_key]
    assert from_hf_config(data, key="x", source="t").parameters == catalogued.parameters


def test_deepseek_r1_catalog_entry_is_the_config():
    from_config = arch("deepseek-ai__DeepSeek-R1")
    catalogued = architectures()["deepseek-r1"]
    for field in (
        "num_layers",
        "hidden_size",
        "num_heads",
        "num_kv_heads",
        "head_dim",
        "intermediate_size",
        "vocab_size",
        "moe",
        "mla",
        "parameters",
    ):
        assert getattr(from_config, field) == getattr(catalogued, field), field


# --- mixture of experts -------------------------------------------------------------------


def test_mixtral_experts_counted():
    mixtral = arch("mistralai__Mixtral-8x7B-v0.1")
    # per layer: attention 41,943,040 (as Mistral); 8 experts x 3 x 4,096 x 14,336 =
    # 1,409,286,144; router 4,096 x 8 = 32,768; norms 8,192 -> 1,451,270,144 x 32 =
    # 46,440,644,608; + 262,144,000 embeddings/LM head + 4,096 = 46,702,792,704 ("46.7B").
    assert mixtral.parameters == 46_702_792_704
    # active: less 6 unused experts x 176,160,768 x 32 layers = 33,822,867,456 -> 12.9B
    assert mixtral.active_parameters == 12_879_925_248
    assert kv_bytes_per_token(mixtral, "bf16") == 131_072


def test_qwen3_moe_weights_are_nine_times_the_dense_reading_and_need_tp4():
    qwen = arch("Qwen__Qwen3-30B-A3B")
    # per layer: q 2,048 x 4,096 and o 4,096 x 2,048 = 8,388,608 each; k, v 2,048 x 512 =
    # 1,048,576 each; q/k norms 2 x 128; 128 experts x 3 x 2,048 x 768 = 603,979,776; router
    # 2,048 x 128 = 262,144; norms 4,096 -> 623,120,640 x 48 = 29,909,790,720; + 2 x 151,936
    # x 2,048 = 622,329,856 embeddings/LM head + 2,048 = 30,532,122,624 ("30.5B").
    assert qwen.parameters == 30_532_122_624
    # Read as dense (intermediate_size 6,144, the old reading): per layer 18,874,368 +
    # 3 x 2,048 x 6,144 + 4,096 = 56,627,200 x 48 + 622,331,904 = 3,340,437,504: 9.1x too small.
    assert qwen.parameters / 3_340_437_504 == pytest.approx(9.14, abs=0.01)
    # active: less 120 x 4,718,592 x 48 = 27,179,089,920 -> 3,353,032,704 ("A3B")
    assert qwen.active_parameters == 3_353_032_704
    # vLLM: 2 x 4 x 128 x 2 B x 48 = 98,304 B/token; at TP 8 each rank keeps max(1, 4 // 8)
    # = 1 head: 24,576 B/token per rank (8 ranks hold 2x the unsplit cache)
    assert kv_bytes_per_token(qwen, "bf16") == 98_304
    assert kv_bytes_per_token_per_accelerator(qwen, "bf16", 8) == 24_576
    # BF16 weights 61,064,245,248 B: on a 32 GB RTX 5090 (budget 0.9 x 31.84 GiB =
    # 30.77e9 B) even TP 2's 30.53e9 B of weights per card leave no room -> TP 4.
    assert plan_tp(qwen, "rtx-5090", weight_precision="bf16") == 4


def test_qwen3_moe_fp8_block_checkpoint_bytes_and_tp_limit():
    qwen = arch("Qwen__Qwen3-30B-A3B-FP8")
    assert qwen.quantization.describe() == "fp8 8-bit, block 128x128"
    # FP8 values 1 B each, plus an FP32 scale per 128 x 128 tile of every linear layer:
    # q 4,096 x 2,048: 8,388,608 + 32 x 16 x 4 = 8,390,656; k, v 512 x 2,048: 1,048,576 + 4 x
    # 16 x 4 = 1,048,832 each; o: 8,390,656; an expert's gate/up (768 x 2,048) and down
    # (2,048 x 768): 3 x (1,572,864 + 6 x 16 x 4) = 4,719,744, x 128 = 604,127,232
    # -> 623,006,208 per layer x 48 = 29,904,297,984 B.
    # Left in BF16: 30,532,122,624 - 48 x 622,854,144 quantized = 635,123,712 parameters
    # (embeddings, LM head, norms, routers; modules_to_not_convert lists the LM head, the
    # routers and the norms) x 2 B = 1,270,247,424 B.
    assert weight_bytes(qwen, "fp8") == 29_904_297_984 + 1_270_247_424
    # vLLM needs each rank's expert slice (768 / TP) in whole 128-wide blocks: 384 at TP 2,
    # 192 at TP 4 ("not divisible by weight quantization block_n = 128").
    assert valid_tp_degrees(qwen, 8) == [1, 2]
    assert valid_tp_degrees(arch("Qwen__Qwen3-30B-A3B"), 8) == [1, 2, 4, 8]


# --- multi-head latent attention ------------------------------------------------------------


def test_deepseek_v2_lite_latent_kv_and_all_experts():
    lite = arch("deepseek-ai__DeepSeek-V2-Lite")
    # vLLM MLA: (512 + 64) x 2 B x 27 layers = 31,104 B/token, on every TP rank
    assert kv_bytes_per_token(lite, "bf16") == 31_104
    assert kv_bytes_per_token_per_accelerator(lite, "bf16", 4) == 31_104
    # Read as MHA (16 KV heads of 2,048 / 16 = 128): 2 x 27 x 16 x 128 x 2 = 221,184: 7.1x.
    assert 221_184 // kv_bytes_per_token(lite, "bf16") == 7
    # per layer: q 2,048 x 16 x 192 = 6,291,456; kv_a 2,048 x 576 = 1,179,648; kv_a norm
    # 512; kv_b 512 x 16 x 256 = 2,097,152; o 2,048 x 2,048 = 4,194,304; norms 4,096
    # -> 13,767,168 x 27 = 371,713,536. Layer 0 dense: 3 x 2,048 x 10,944 = 67,239,936.
    # Layers 1-26: 64 experts x 3 x 2,048 x 1,408 = 553,648,128 + 2 shared 17,301,504 +
    # router 131,072 = 571,080,704 x 26 = 14,848,098,304. Embeddings/LM head 2 x 102,400 x
    # 2,048 = 419,430,400, final norm 2,048 -> 15,706,484,224 ("16B").
    assert lite.parameters == 15_706_484_224
    # Read as dense MHA (the old reading): per layer q, k, v, o 4 x 2,048^2 = 16,777,216; MLP
    # 3 x 2,048 x 10,944 = 67,239,936; norms 4,096 -> 84,021,248 x 27 + 419,432,448 =
    # 2,688,006,144: 5.8x too small.
    assert lite.parameters / 2_688_006_144 == pytest.approx(5.84, abs=0.01)
    # active: less 58 unused experts x 8,650,752 x 26 = 13,045,334,016
    assert lite.active_parameters == 2_661_150_208


def test_deepseek_r1_latent_kv_is_replicated_not_split():
    r1 = arch("deepseek-ai__DeepSeek-R1")
    # vLLM MLA: (512 + 64) x 2 B x 61 = 70,272 B/token per rank, 35,136 with an FP8 cache
    assert kv_bytes_per_token(r1, "bf16") == 70_272
    assert kv_bytes_per_token_per_accelerator(r1, "bf16", 8) == 70_272
    assert kv_bytes_per_token_per_accelerator(r1, "fp8", 8) == 35_136
    # "671B total, 37B activated" (the MTP layer, loaded only for speculative decoding, is not)
    assert (r1.parameters, r1.active_parameters) == (671_026_419_200, 37_552_297_472)


def test_deepseek_r1_fp8_checkpoint_bytes():
    r1 = arch("deepseek-ai__DeepSeek-R1")
    # Quantized linear parameters: attention 61 x (7,168 x 1,536 + 1,536 x 24,576 + 7,168 x
    # 576 + 512 x 32,768 + 16,384 x 7,168 = 187,105,280) = 11,413,422,080; dense MLP 3 x 3 x
    # 7,168 x 18,432 = 1,189,085,184; routed 58 x 256 x 44,040,192 = 653,908,770,816; shared
    # 58 x 44,040,192 = 2,554,331,136 -> 669,065,609,216 B of FP8 values.
    # FP32 scale per 128 x 128 tile: attention 61 x 4 x (12 x 56 + 192 x 12 + 5 x 56 + 256 x
    # 4 + 56 x 128 = 11,448) = 2,793,312; dense 3 x 4 x 3 x 8,064 = 290,304; experts
    # (256 + 1) x 58 x 4 x 3 x 896 = 160,269,312 -> 163,352,928 B.
    # BF16 rest: 671,026,419,200 - 669,065,609,216 = 1,960,809,984 parameters (embeddings and
    # LM head 2 x 129,280 x 7,168, norms, routers, score biases) x 2 B = 3,921,619,968 B.
    assert weight_bytes(r1, "fp8") == 669_065_609_216 + 163_352_928 + 3_921_619_968
    assert valid_tp_degrees(r1, 8) == [1, 2, 4, 8]


# --- multi-query and the old key spellings ------------------------------------------------


@pytest.mark.parametrize(
    "name", ["tiiuae__falcon-7b-instruct", "tiiuae__falcon-7b-instruct__rw-legacy"]
)
def test_falcon_7b_multi_query(name):
    falcon = arch(name)
    # multi_query: one KV head of 4,544 / 71 = 64 -> vLLM: 2 x 1 x 64 x 2 B x 32 = 8,192
    # B/token (as 71 heads it would be 581,632: 71x)
    assert (falcon.num_kv_heads, falcon.head_dim) == (1, 64)
    assert kv_bytes_per_token(falcon, "bf16") == 8_192
    # per layer: fused QKV 4,544 x (71 + 2) x 64 = 21,229,568; dense 4,544^2 = 20,647,936;
    # plain 4h MLP 2 x 4,544 x 18,176 = 165,183,488 (no gate); one LayerNorm with bias 9,088
    # -> 207,070,080 x 32 = 6,626,242,560; tied embeddings 65,024 x 4,544 = 295,469,056;
    # final LayerNorm 9,088 -> 6,921,720,704. The .bin checkpoint (14,434,379,520 B) stores
    # the embedding twice: (6,921,720,704 + 295,469,056) x 2 B.
    assert falcon.parameters == 6_921_720_704
    assert (falcon.parameters + 295_469_056) * 2 == 14_434_379_520
    assert valid_tp_degrees(falcon, 8) == [1]  # 71 query heads: prime


def test_falcon_40b_n_head_kv():
    falcon = arch("tiiuae__falcon-40b")
    # RefinedWeb: n_head_kv 8 groups of 8,192 / 128 = 64 -> 2 x 8 x 64 x 2 B x 60 = 122,880
    assert kv_bytes_per_token(falcon, "bf16") == 122_880
    # per layer: QKV 8,192 x (128 + 16) x 64 = 75,497,472; dense 67,108,864; MLP 2 x 8,192 x
    # 32,768 = 536,870,912; two LayerNorms 32,768 -> 679,510,016 x 60 = 40,770,600,960;
    # tied embeddings 532,676,608; final norm 16,384. The .bin checkpoint (83,671,941,120 B)
    # again stores the embedding twice.
    assert falcon.parameters == 41_303_293_952
    assert (falcon.parameters + 532_676_608) * 2 == 83_671_941_120


# --- hybrid windows -------------------------------------------------------------------------


def test_gemma2_alternating_window_and_default_tied_embeddings():
    gemma = arch("google__gemma-2-9b-it")
    # no tie_word_embeddings key: Gemma2Config ties by default. Per layer: q, o 3,584 x
    # 4,096; k, v 3,584 x 2,048; MLP 3 x 3,584 x 14,336; 4 norms -> x 42 + 256,000 x 3,584
    # + 3,584 = 9,241,705,984; x 2 B = 18,483,411,968 = the checkpoint's total_size.
    assert gemma.tie_word_embeddings
    assert weight_bytes(gemma, "bf16") == 18_483_411_968
    # layer_types absent: layer i slides when (i + 1) % 2 -> 21 of 42, window 4,096
    assert (gemma.sliding_window.tokens, gemma.sliding_window.layers) == (4096, 21)
    context = Context(batch=4, seq_len=8192, max_batched_tokens=8192)
    # 21 full layers x 32,768 tokens + 21 sliding x min(32,768, 4 x 4,095 + 8,192 = 24,572)
    # = 1,204,140 token-layers x 8,192 B (2 x 8 x 256 x 2) = 9,864,314,880 B
    assert kv_bytes_for_context(gemma, "bf16", context) == 9_864_314_880


def test_gemma3_layer_types():
    gemma = arch("google__gemma-3-270m-it")
    # layer_types: 15 sliding_attention (window 512) + 3 full_attention
    assert (gemma.sliding_window.tokens, gemma.sliding_window.layers) == (512, 15)
    # per layer: q, o 640 x 1,024 = 655,360 each; k, v 640 x 256 = 163,840 each; q/k norms
    # 2 x 256; MLP 3 x 640 x 2,048 = 3,932,160; 4 norms 2,560 -> 5,573,632 x 18 =
    # 100,325,376; tied 262,144 x 640 embedding 167,772,160; final norm 640 -> 268,098,176.
    # x 2 B = 536,196,352: the single model.safetensors is 536,223,056 B, the difference
    # (26,704 B) being its JSON header.
    assert gemma.parameters == 268_098_176
    assert 536_223_056 - 2 * gemma.parameters == 26_704


# --- quantized checkpoints ------------------------------------------------------------------


def test_gptq_checkpoint_bytes():
    llama = arch("TheBloke__Wizard-Vicuna-30B-Uncensored-GPTQ")
    assert llama.quantization.describe() == "gptq 4-bit" and llama.quantization.group_size is None
    # Linear weights per layer: 4 x 6,656^2 + 3 x 6,656 x 17,920 = 535,035,904 x 60 =
    # 32,102,154,240 at 4 bits = 16,051,077,120 B. group_size -1: one FP16 scale and a 4-bit
    # zero per output channel (69,120 per layer: 2.5 B each = 172,800) and an int32 g_idx per
    # input feature (57,856 x 4 = 231,424) -> 404,224 x 60 = 24,253,440 B. FP16 rest:
    # embeddings and LM head 2 x 32,000 x 6,656 = 425,984,000 parameters, norms 121 x 6,656
    # = 805,376 -> x 2 B = 853,578,752 B.
    assert weight_bytes(llama, "int4") == 16_051_077_120 + 24_253_440 + 853_578_752
    # The model.safetensors file is 16,940,128,464 B: 0.07% more, of which 8,294,400 B are
    # zero biases AutoGPTQ writes (60 x 69,120 x 2 B) and vLLM skips ("Skip loading extra
    # bias for GPTQ models"), the rest its header.
    assert 16_940_128_464 / weight_bytes(llama, "int4") - 1 < 0.001
    # the old reading, parameters x 0.5 B, was 16,264,471,808 B
    assert llama.parameters // 2 == 16_264_471_808


def test_awq_7b_is_not_parameters_times_half_a_byte():
    # AWQ block (the shape AutoAWQ writes) added to Mistral-7B-v0.1's real config.json.
    mistral = arch("mistralai__Mistral-7B-v0.1", quantization_config=AWQ)
    # linear 6,979,321,856 parameters x 0.5 B = 3,489,660,928; per 128 weights an FP16 scale
    # and a 4-bit zero (2.5 B): 136,314,880; 16-bit rest (262,410,240 parameters: embeddings,
    # LM head, norms) 524,820,480 -> 4,150,796,288 B ("4.15 GB", TheBloke's AWQ file size);
    # parameters x 0.5 B = 3,620,866,048 is 12.8% low.
    assert weight_bytes(mistral, "int4") == 3_489_660_928 + 136_314_880 + 524_820_480
    # A 150k vocabulary makes it worse: Qwen2.5-7B at INT4 (the same AWQ layout) is 5.57e9 B,
    # parameters x 0.5 B = 3.81e9 is 31.6% low.
    qwen = architectures()["qwen2.5-7b-instruct"]
    assert 1 - qwen.parameters / 2 / weight_bytes(qwen, "int4") == pytest.approx(0.316, abs=0.001)


def test_bitsandbytes_nf4_double_quant_bytes():
    block = {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "bnb_4bit_use_double_quant": True,
    }
    mistral = arch("mistralai__Mistral-7B-v0.1", quantization_config=block)
    # 4-bit values 3,489,660,928; one 8-bit absmax per 64 weights 109,051,904; one FP32 scale
    # per 256 of those 1,703,936; 16-bit rest 524,820,480
    assert weight_bytes(mistral, "int4") == 3_489_660_928 + 109_051_904 + 1_703_936 + 524_820_480


# --- refusals: never a silent guess ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        # real configs xpool does not size: named, not guessed
        (config("openai__gpt-oss-20b"), "model_type", "gpt_oss"),
        (
            {**config("mistralai__Mistral-7B-v0.1"), "num_local_experts": 8},
            "num_local_experts",
            "mistral",
        ),
        (
            {**config("Qwen__Qwen2.5-0.5B"), "layer_types": ["linear_attention"] * 24},
            "layer_types",
            "linear_attention",
        ),
        (
            {**config("mistralai__Mistral-7B-v0.1"), "text_config": {"hidden_size": 8}},
            "text_config",
            "does not size",
        ),
        (
            {**config("Qwen__Qwen2.5-0.5B"), "quantization_config": {"quant_method": "mxfp4"}},
            "quantization_config",
            "mxfp4",
        ),
        # missing keys
        (
            without("mistralai__Mixtral-8x7B-v0.1", "num_experts_per_tok"),
            "num_experts_per_tok",
            "lacks",
        ),
        (without("deepseek-ai__DeepSeek-R1", "qk_rope_head_dim"), "qk_rope_head_dim", "lacks"),
        # contradictory keys
        (
            {**config("tiiuae__falcon-7b-instruct"), "num_kv_heads": 8},
            "num_kv_heads",
            "multi_query",
        ),
        (
            {**config("google__gemma-2-9b-it"), "sliding_window_size": 2048},
            "sliding_window_size",
            "contradicts",
        ),
        (
            {**config("google__gemma-3-270m-it"), "num_hidden_layers": 20},
            "layer_types",
            "one attention type per layer",
        ),
        (
            {**config("mistralai__Mixtral-8x7B-v0.1"), "num_experts_per_tok": 9},
            "num_experts_per_tok",
            "exceeds",
        ),
        (
            {**config("Qwen__Qwen2.5-0.5B"), "num_key_value_heads": 3},
            "num_key_value_heads",
            "does not divide",
        ),
        (
            {
                **config("mistralai__Mistral-7B-v0.1"),
                "quantization_config": {**AWQ, "modules_to_not_convert": ["visual"]},
            },
            "quantization_config",
            "'visual'",
        ),
    ],
)
def test_config_json_refusals_name_the_key(data, key, words):
    with pytest.raises(ConfigJsonError) as caught:
        from_hf_config(data, key="x", source="t")
    assert caught.value.key == key
    assert key in str(caught.value) and words in str(caught.value)


def plan_tp(architecture: Architecture, accelerator: str, *, weight_precision: str) -> int | None:
    """The TP `xpool plan` picks for one version on an 8-card pool of `accelerator`."""
    platform = Platform.model_validate(
        {
            "apiVersion": "xpool.io/v1alpha1",
            "kind": "Platform",
            "metadata": {"name": "t"},
            "spec": {
                "pools": [
                    {
                        "name": "p",
                        "vendor": accelerators()[accelerator].vendor,
                        "accelerator": accelerator,
                        "nodes": 1,
                    }
                ],
                "models": [
                    {
                        "name": "m",
                        "tier": "P0",
                        "architecture": "x",
                        "versions": [
                            {
                                "version": "1",
                                "source": "hf://o/m",
                                "weightPrecision": weight_precision,
                            }
                        ],
                        "demand": {"peakQps": 1},
                    }
                ],
            },
        }
    )
    model = platform.spec.models[0]
    return plan_version(platform, model, model.versions[0], architecture, platform.spec.pools[0]).tp


# --- through the loader: keys, located errors -----------------------------------------------


def platform_file(tmp_path: Path, models: list[dict[str, Any]]) -> Path:
    doc = {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "t"},
        "spec": {
            "pools": [
                {"name": "gpu", "vendor": "nvidia", "accelerator": "h100-sxm-80gb", "nodes": 1}
            ],
            "models": models,
        },
    }
    path = tmp_path / "platform.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return path


def model(name: str, config_path: str, **version: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tier": "P0",
        "architecture": {"config": config_path},
        "versions": [{"version": "1", "source": "hf://o/m", **version}],
        "demand": {"peakQps": 1},
    }


def test_configs_side_by_side_keep_their_own_names(tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("mistralai__Mistral-7B-v0.1", "mistralai__Mixtral-8x7B-v0.1"):
        (tmp_path / "models" / f"{name}.json").write_text(json.dumps(config(name)))
    path = platform_file(
        tmp_path,
        [
            model("a", "models/mistralai__Mistral-7B-v0.1.json"),
            model("b", "models/mistralai__Mixtral-8x7B-v0.1.json"),
        ],
    )
    loaded = load_platform(path)
    # not both "models" (the folder): each file's own name
    assert loaded.architectures["a"].key == "mistralai__Mistral-7B-v0.1"
    assert loaded.architectures["b"].key == "mistralai__Mixtral-8x7B-v0.1"


def test_quantized_checkpoint_needs_its_precision_declared(tmp_path):
    checkpoint = tmp_path / "gptq" / "config.json"
    checkpoint.parent.mkdir()
    checkpoint.write_text(json.dumps(config("TheBloke__Wizard-Vicuna-30B-Uncensored-GPTQ")))
    with pytest.raises(InputError) as caught:
        load_platform(platform_file(tmp_path, [model("m", "gptq/config.json")]))
    (problem,) = caught.value.problems
    assert problem.path == "spec.models[0].versions[0]"
    assert "gptq 4-bit" in problem.message and "set weightPrecision: int4" in problem.message
    loaded = load_platform(
        platform_file(tmp_path, [model("m", "gptq/config.json", weightPrecision="int4")])
    )
    assert loaded.architectures["m"].quantization.method == "gptq"


def test_config_json_error_names_the_key_and_its_line(tmp_path):
    broken = tmp_path / "falcon" / "config.json"
    broken.parent.mkdir()
    text = json.dumps({**config("tiiuae__falcon-7b-instruct"), "num_kv_heads": 8}, indent=2)
    broken.write_text(text)
    line = text.splitlines().index('  "num_kv_heads": 8') + 1
    with pytest.raises(InputError) as caught:
        load_platform(platform_file(tmp_path, [model("m", "falcon/config.json")]))
    (problem,) = caught.value.problems
    assert problem.path == "spec.models[0].architecture.config"
    assert f"falcon/config.json:{line}: multi_query is true but num_kv_heads is 8" in (
        problem.message
    )
