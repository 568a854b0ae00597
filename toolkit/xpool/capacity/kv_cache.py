"""KV-cache bytes as vLLM allocates them: per token, per layer, per tensor-parallel rank.

Formulas from vLLM 0.10 (`vllm/config/__init__.py` `ModelConfig.get_num_kv_heads`,
`vllm/v1/kv_cache_interface.py` `AttentionSpec.page_size_bytes` and
`SlidingWindowSpec.max_memory_usage_bytes`):

- GQA/MHA/MQA: 2 (K and V) x max(1, KV heads // TP) x head_dim x bytes per layer and rank;
  with TP above the KV-head count every rank keeps a copy of a head.
- MLA (DeepSeek-V2/V3/R1): (kv_lora_rank + qk_rope_head_dim) x bytes per layer, one latent
  vector and no separate V, the same on every rank (not divided by TP).
- Sliding-window layers hold at most window - 1 tokens of a sequence before a step plus the
  tokens the step adds; full-attention layers hold the whole context.
Encoders (embedding, rerank) keep no KV cache between steps.
"""

from __future__ import annotations

from xpool.catalog.architectures import Architecture
from xpool.config.models import PRECISION_BYTES, Context


def kv_heads_per_accelerator(arch: Architecture, tp: int) -> int:
    """KV heads split across TP ranks; with TP above the KV-head count each rank keeps a copy
    (MLA's single latent 'head' is on every rank)."""
    return max(1, arch.num_kv_heads // tp)


def _values_per_head(arch: Architecture) -> int:
    """Cached vectors per head: K and V, or MLA's one latent vector."""
    return 1 if arch.mla is not None else 2


def kv_bytes_per_token_per_layer(arch: Architecture, kv_precision: str, tp: int = 1) -> int:
    """Bytes one token adds to one attention layer's cache on one of TP ranks."""
    if arch.model_type != "llm":
        return 0
    heads = kv_heads_per_accelerator(arch, tp)
    return int(_values_per_head(arch) * heads * arch.head_dim * PRECISION_BYTES[kv_precision])


def kv_bytes_per_token(arch: Architecture, kv_precision: str) -> int:
    """Bytes one token adds to the cache of all layers of an instance, counting each KV head
    once (what TP splits when it can): 2 x layers x KV heads x head_dim x bytes, or
    layers x (kv_lora_rank + qk_rope_head_dim) x bytes with MLA."""
    return arch.num_layers * kv_bytes_per_token_per_layer(arch, kv_precision)


def kv_bytes_per_token_per_accelerator(arch: Architecture, kv_precision: str, tp: int) -> int:
    """Bytes one token adds to all layers' cache on one of TP ranks."""
    return arch.num_layers * kv_bytes_per_token_per_layer(arch, kv_precision, tp)


def _window_layers(arch: Architecture) -> tuple[int, int, int]:
    """(full-attention layers, sliding layers, window tokens)."""
    window = arch.sliding_window
    if window is None:
        return arch.num_layers, 0, 0
    return arch.num_layers - window.layers, window.layers, window.tokens


def held_token_layers(arch: Architecture, context: Context) -> int:
    """Tokens the cache holds, summed over layers, with `batch` sequences of `seqLen`.

    A sliding layer holds at most window - 1 earlier tokens of each sequence plus the tokens
    a step adds, at most maxBatchedTokens over the batch; for one sequence this is vLLM's
    `min(sliding_window - 1 + max_num_batched_tokens, max_model_len)` (without its one
    block of alignment slack).
    """
    full, sliding, window = _window_layers(arch)
    tokens = context.batch * context.seq_len
    in_window = min(tokens, context.batch * (window - 1) + context.max_batched_tokens)
    return full * tokens + sliding * in_window


def read_token_layers(arch: Architecture, context: Context) -> int:
    """Tokens one decode step reads, summed over layers: a sliding layer attends to at most
    the window of each sequence."""
    full, sliding, window = _window_layers(arch)
    return context.batch * (full * context.seq_len + sliding * min(context.seq_len, window))


def kv_bytes_for_context(arch: Architecture, kv_precision: str, context: Context) -> int:
    """The cache `batch` sequences of `seqLen` hold, each KV head counted once."""
    return kv_bytes_per_token_per_layer(arch, kv_precision) * held_token_layers(arch, context)


def kv_bytes_for_context_per_accelerator(
    arch: Architecture, kv_precision: str, context: Context, tp: int
) -> int:
    """The same cache as it lies on one of TP ranks (replicated heads and MLA included)."""
    per_layer = kv_bytes_per_token_per_layer(arch, kv_precision, tp)
    return per_layer * held_token_layers(arch, context)
