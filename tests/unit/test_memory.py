"""Pinned capacity arithmetic: the figures DESIGN.md fact 7 and the vLLM log establish."""

from __future__ import annotations

import pytest

from xpool.capacity.memory import (
    GIB,
    activation_bytes_per_accelerator,
    kv_bytes_per_token,
    kv_bytes_per_token_per_accelerator,
    tokens_in,
    weight_bytes,
)
from xpool.catalog.architectures import architectures
from xpool.config.models import Context

ARCH = architectures()


def test_deepseek_32b_kv_per_token_bf16_is_256_kib():
    # 2 (K,V) x 64 layers x 8 KV heads x 128 head dim x 2 bytes
    assert kv_bytes_per_token(ARCH["deepseek-r1-distill-qwen-32b"], "bf16") == 262_144


@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_deepseek_32b_kv_per_token_8bit_is_128_kib(precision):
    assert kv_bytes_per_token(ARCH["deepseek-r1-distill-qwen-32b"], precision) == 131_072


def test_deepseek_32b_kv_for_batch_8_by_2048_is_4_gib_not_8_gb():
    per_token = kv_bytes_per_token(ARCH["deepseek-r1-distill-qwen-32b"], "bf16")
    assert per_token * 8 * 2048 == 4_294_967_296


def test_llama_31_8b_kv_per_token_bf16():
    assert kv_bytes_per_token(ARCH["llama-3.1-8b-instruct"], "bf16") == 131_072


def test_llama_31_8b_kv_tokens_match_vllm_on_rtx_3090():
    # vLLM logged "GPU KV cache size: 31,232 tokens" for 3.81 GiB of KV cache.
    tokens = tokens_in(int(3.81 * GIB), kv_bytes_per_token(ARCH["llama-3.1-8b-instruct"], "bf16"))
    assert tokens == 31_211
    assert abs(tokens - 31_232) / 31_232 < 0.001  # 3.81 is itself rounded in the log


def test_encoders_keep_no_kv_cache():
    assert kv_bytes_per_token(ARCH["bge-m3"], "bf16") == 0


def test_weight_bytes_by_precision():
    arch = ARCH["deepseek-r1-distill-qwen-32b"]
    assert weight_bytes(arch, "bf16") == 2 * arch.parameters
    # Quantized, only the linear layers shrink; embeddings, LM head, norms and biases stay
    # 16-bit. Linear weights per layer: q, o 5,120 x 5,120; k, v 5,120 x 1,024; gate, up,
    # down 5,120 x 27,648 -> 487,587,840 x 64 layers = 31,205,621,760; the rest is
    # 32,763,876,352 - 31,205,621,760 = 1,558,254,592 (2 x 152,064 x 5,120 embedding and
    # LM head, norms, q/k/v biases) x 2 B = 3,116,509,184 B.
    # (The earlier expectation, parameters x 1 B for INT8, priced the embeddings at 8 bits.)
    # INT8 = a GPTQ checkpoint (render/launch.py FORMATS), 8-bit, group 128: values 1 B, FP16
    # scale + 8-bit zero per 128 weights (3/128 B: 731,381,760 B), int32 g_idx per input
    # feature ((6 x 5,120 + 27,648) x 4 B x 64 = 14,942,208 B).
    assert weight_bytes(arch, "int8") == (
        31_205_621_760 + 731_381_760 + 14_942_208 + 3_116_509_184
    )  # 35,068,454,912 B, 7.0% above parameters x 1 B
    # INT4 = an AWQ checkpoint, group 128: values 0.5 B, FP16 scale + 4-bit zero per 128
    # weights (2.5/128 B: 609,484,800 B).
    assert weight_bytes(arch, "int4") == 15_602_810_880 + 609_484_800 + 3_116_509_184


def test_kv_heads_replicate_when_tp_exceeds_them():
    glm = ARCH["glm-4-9b-chat"]  # 2 KV groups
    assert glm.num_kv_heads == 2
    one_head = kv_bytes_per_token_per_accelerator(glm, "bf16", 4)
    assert one_head == 2 * glm.num_layers * 1 * glm.head_dim * 2
    assert 4 * one_head == 2 * kv_bytes_per_token(glm, "bf16")  # 4 ranks x 1 copy = 2x the heads


def test_activation_split_across_tp_and_capped_by_chunked_prefill():
    arch = ARCH["qwen2.5-32b-instruct"]
    small = Context(batch=1, seq_len=512)
    big = Context(batch=64, seq_len=8192, max_batched_tokens=8192)
    assert activation_bytes_per_accelerator(arch, small, 1) < activation_bytes_per_accelerator(
        arch, big, 1
    )
    # Same prefill chunk either way once capped: batch x seqLen beyond the cap adds only logits.
    capped = Context(batch=64, seq_len=4096, max_batched_tokens=8192)
    diff = activation_bytes_per_accelerator(arch, big, 1) - activation_bytes_per_accelerator(
        arch, capped, 1
    )
    assert diff == 0
    assert activation_bytes_per_accelerator(arch, big, 2) < activation_bytes_per_accelerator(
        arch, big, 1
    )
