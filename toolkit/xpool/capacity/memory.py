"""Bytes an instance needs: weights + KV cache + activations + runtime overhead.

Formulas and their sources are in docs/capacity.md. Figures are per accelerator unless a
name says otherwise, because what must fit is one accelerator's share of an instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xpool.catalog.architectures import Architecture
from xpool.config.models import PRECISION_BYTES, Context

ACTIVATION_BYTES = 2  # engines compute activations in BF16/FP16 whatever the weight precision
LOGIT_BYTES = 4  # logits are upcast to FP32 for sampling
GIB = 1024**3


def weight_bytes(arch: Architecture, precision: str) -> int:
    """Parameters x bytes per parameter (INT4 packs two per byte)."""
    return math.ceil(arch.parameters * PRECISION_BYTES[precision])


def kv_bytes_per_token(arch: Architecture, kv_precision: str) -> int:
    """K and V, for every layer and every KV head: 2 x layers x KV heads x head dim x bytes.

    Encoders (embedding, rerank) keep no KV cache between steps, so they need none.
    """
    if arch.model_type != "llm":
        return 0
    return int(
        2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * PRECISION_BYTES[kv_precision]
    )


def kv_heads_per_accelerator(arch: Architecture, tp: int) -> int:
    """KV heads split across TP ranks; with TP above the KV-head count each rank keeps a copy."""
    return max(1, arch.num_kv_heads // tp)


def kv_bytes_per_token_per_accelerator(arch: Architecture, kv_precision: str, tp: int) -> int:
    if arch.model_type != "llm":
        return 0
    heads = kv_heads_per_accelerator(arch, tp)
    return int(2 * arch.num_layers * heads * arch.head_dim * PRECISION_BYTES[kv_precision])


def prefill_tokens(context: Context) -> int:
    """Tokens in the largest forward pass: a whole batch, capped by chunked prefill."""
    return min(context.batch * context.seq_len, context.max_batched_tokens)


def activation_bytes_per_accelerator(arch: Architecture, context: Context, tp: int) -> int:
    """Peak transient memory of one forward pass on one TP rank.

    Per token at the widest layer: the residual stream, the normalised input, the attention
    output and the projected output (4 x hidden, replicated on every rank), plus the gated
    MLP's two intermediate tensors (2 x intermediate, split across ranks); then the FP32
    logits of one sampled position per sequence. Attention scores are not materialised
    (FlashAttention-style kernels), so nothing grows with seqLen squared.
    """
    tokens = prefill_tokens(context)
    per_token = 4 * arch.hidden_size + 2 * math.ceil(arch.intermediate_size / tp)
    logits = context.batch * arch.vocab_size * LOGIT_BYTES
    return tokens * per_token * ACTIVATION_BYTES + logits


@dataclass(frozen=True)
class MemoryFootprint:
    """One instance of one model version at one TP degree."""

    tp: int
    weight_bytes: int  # whole instance
    kv_bytes_per_token: int  # whole instance, no replication
    kv_bytes_for_context: int  # whole instance: batch x seqLen tokens
    activation_bytes: int  # whole instance: per-rank peak x TP
    overhead_bytes: int  # per accelerator
    bytes_per_accelerator: int  # what must fit on each of the TP accelerators
    budget_per_accelerator: int  # accelerator memory x memoryUtilization

    @property
    def fits(self) -> bool:
        return self.bytes_per_accelerator <= self.budget_per_accelerator

    @property
    def shortfall_bytes(self) -> int:
        return max(0, self.bytes_per_accelerator - self.budget_per_accelerator)


def footprint(
    arch: Architecture,
    *,
    weight_precision: str,
    kv_precision: str,
    context: Context,
    tp: int,
    accelerator_bytes: int,
    memory_utilization: float,
    overhead_bytes: int,
) -> MemoryFootprint:
    weights = weight_bytes(arch, weight_precision)
    tokens = context.batch * context.seq_len
    kv_rank = kv_bytes_per_token_per_accelerator(arch, kv_precision, tp) * tokens
    act_rank = activation_bytes_per_accelerator(arch, context, tp)
    per_accelerator = math.ceil(weights / tp) + kv_rank + act_rank + overhead_bytes
    return MemoryFootprint(
        tp=tp,
        weight_bytes=weights,
        kv_bytes_per_token=kv_bytes_per_token(arch, kv_precision),
        kv_bytes_for_context=kv_bytes_per_token(arch, kv_precision) * tokens,
        activation_bytes=act_rank * tp,
        overhead_bytes=overhead_bytes,
        bytes_per_accelerator=per_accelerator,
        budget_per_accelerator=int(accelerator_bytes * memory_utilization),
    )


def kv_token_capacity(fp: MemoryFootprint, arch: Architecture, kv_precision: str) -> int:
    """Tokens of KV cache an instance holds in what weights, activations and overhead leave."""
    per_token = kv_bytes_per_token_per_accelerator(arch, kv_precision, fp.tp)
    if per_token == 0:
        return 0
    free = (
        fp.budget_per_accelerator
        - math.ceil(fp.weight_bytes / fp.tp)
        - fp.activation_bytes // fp.tp
        - fp.overhead_bytes
    )
    return tokens_in(free, per_token)


def tokens_in(kv_budget_bytes: int, bytes_per_token: int) -> int:
    """Whole tokens that fit a KV budget (vLLM rounds down to blocks; this is the upper bound)."""
    return max(0, kv_budget_bytes // bytes_per_token)
