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
    assert weight_bytes(arch, "int8") == arch.parameters
    assert weight_bytes(arch, "bf16") == 2 * arch.parameters
    assert weight_bytes(arch, "int4") == (arch.parameters + 1) // 2


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
