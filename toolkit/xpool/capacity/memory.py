"""Bytes an instance needs: weights + KV cache + activations + runtime overhead.

Formulas and their sources are in docs/capacity.md. Figures are per accelerator unless a
name says otherwise, because what must fit is one accelerator's share of an instance. Weight
bytes (quantized layouts included) are in `quantization.py`, KV-cache bytes (GQA, MLA,
sliding windows) in `kv_cache.py`; both are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xpool.capacity.kv_cache import (
    kv_bytes_for_context,
    kv_bytes_for_context_per_accelerator,
    kv_bytes_per_token,
    kv_bytes_per_token_per_accelerator,
    kv_heads_per_accelerator,
)
from xpool.capacity.quantization import weight_bytes
from xpool.catalog.architectures import Architecture
from xpool.config.models import Context

__all__ = [
    "GIB",
    "MemoryFootprint",
    "activation_bytes_per_accelerator",
    "footprint",
    "kv_bytes_per_token",
    "kv_bytes_per_token_per_accelerator",
    "kv_heads_per_accelerator",
    "kv_token_capacity",
    "prefill_tokens",
    "tokens_in",
    "weight_bytes",
]

ACTIVATION_BYTES = 2  # engines compute activations in BF16/FP16 whatever the weight precision
LOGIT_BYTES = 4  # logits are upcast to FP32 for sampling
GIB = 1024**3


def prefill_tokens(context: Context) -> int:
    """Tokens in the largest forward pass: a whole batch, capped by chunked prefill."""
    return min(context.batch * context.seq_len, context.max_batched_tokens)


def activation_bytes_per_accelerator(arch: Architecture, context: Context, tp: int) -> int:
    """Peak transient memory of one forward pass on one TP rank.

    Per token at the widest layer: the residual stream, the normalised input, the attention
    output and the projected output (4 x hidden, replicated on every rank), plus the gated
    MLP's two intermediate tensors (2 x intermediate, split across ranks; in a MoE layer the
    chosen experts' and shared experts' widths); then the FP32 logits of one sampled position
    per sequence. Attention scores are not materialised (FlashAttention-style kernels), so
    nothing grows with seqLen squared.
    """
    tokens = prefill_tokens(context)
    per_token = 4 * arch.hidden_size + 2 * math.ceil(arch.mlp_width_per_token / tp)
    logits = context.batch * arch.vocab_size * LOGIT_BYTES
    return tokens * per_token * ACTIVATION_BYTES + logits


@dataclass(frozen=True)
class MemoryFootprint:
    """One instance of one model version at one TP degree."""

    tp: int
    weight_bytes: int  # whole instance
    kv_bytes_per_token: int  # whole instance, each KV head once
    kv_bytes_for_context: int  # whole instance: batch x seqLen tokens (windows applied)
    activation_bytes: int  # whole instance: per-rank peak x TP
    overhead_bytes: int  # per accelerator
    bytes_per_accelerator: int  # what must fit on each of the TP accelerators
    budget_per_accelerator: int  # accelerator memory x memoryUtilization
    kv_bytes_per_token_per_accelerator: int  # one rank (replicated heads, MLA: not split)
    kv_bytes_for_context_per_accelerator: int

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
    kv_rank = kv_bytes_for_context_per_accelerator(arch, kv_precision, context, tp)
    act_rank = activation_bytes_per_accelerator(arch, context, tp)
    per_accelerator = math.ceil(weights / tp) + kv_rank + act_rank + overhead_bytes
    return MemoryFootprint(
        tp=tp,
        weight_bytes=weights,
        kv_bytes_per_token=kv_bytes_per_token(arch, kv_precision),
        kv_bytes_for_context=kv_bytes_for_context(arch, kv_precision, context),
        activation_bytes=act_rank * tp,
        overhead_bytes=overhead_bytes,
        bytes_per_accelerator=per_accelerator,
        budget_per_accelerator=int(accelerator_bytes * memory_utilization),
        kv_bytes_per_token_per_accelerator=kv_bytes_per_token_per_accelerator(
            arch, kv_precision, tp
        ),
        kv_bytes_for_context_per_accelerator=kv_rank,
    )


def kv_token_capacity(fp: MemoryFootprint) -> int:
    """Tokens of KV cache an instance holds in what weights, activations and overhead leave,
    at the bytes a token costs on one rank in every layer (sliding layers included, so an
    instance with windows holds at least this many)."""
    per_token = fp.kv_bytes_per_token_per_accelerator
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
