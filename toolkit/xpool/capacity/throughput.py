"""Throughput bounds of one instance (roofline): what no engine can exceed on this hardware.

Three limits, each at 100% of a peak figure from the accelerator catalog:
- decode: every step reads the weights (of a MoE, only the experts the batch routes to) and
  the KV cache of every sequence, and yields one token per sequence: memory-bound;
- prefill: a prompt costs 2 FLOPs per active weight per token (multiply and add), plus the
  LM head for the one position sampled: compute-bound, at the peak of the precision the
  weights allow (INT8 tensor ops for INT8/INT4 weights, FP8 for FP8, else BF16);
- a whole request holds one of `batch` slots for its prefill plus outputTokens decode steps,
  so an instance completes at most batch / (prefill time + outputTokens x step time) per second.
The QPS bound is the smallest; docs/capacity.md section 2 works an example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xpool.capacity.kv_cache import kv_bytes_per_token_per_layer, read_token_layers
from xpool.capacity.quantization import WeightBytes
from xpool.catalog.accelerators import Accelerator
from xpool.catalog.architectures import Architecture
from xpool.config.models import Context

TERA = 1e12


def prompt_tokens(context: Context, model_type: str) -> int:
    """Tokens a request brings: an LLM's context holds its prompt and its answer
    (seqLen - outputTokens); an encoder's request is all prompt."""
    if model_type == "llm":
        return context.seq_len - context.output_tokens
    return context.seq_len


def compute_peak(accel: Accelerator, weight_precision: str) -> tuple[float, str]:
    """(FLOP/s of one accelerator, the peak's name) at the fastest path the weights allow.

    INT8 and INT4 weights may run INT8 tensor ops (W8A8, W4A8), FP8 weights FP8 ones; an
    accelerator without such units computes in BF16 (e.g. FP8 as Marlin W8A16 on Ampere).
    """
    if weight_precision in ("int8", "int4") and accel.int8_dense_tops:
        return accel.int8_dense_tops * TERA, "INT8"
    if weight_precision == "fp8" and accel.fp8_dense_tflops:
        return accel.fp8_dense_tflops * TERA, "FP8"
    return accel.bf16_dense_tflops * TERA, "BF16"


def compute_parameters(arch: Architecture) -> int:
    """Active parameters a prompt token multiplies by: not the embedding lookup, and not an
    LLM's LM head, which vLLM applies only to the positions it samples."""
    embedding = arch.vocab_size * arch.hidden_size
    lm_head = embedding if arch.model_type == "llm" and not arch.tie_word_embeddings else 0
    return arch.active_parameters - embedding - lm_head


def prefill_flops(arch: Architecture, tokens: int) -> float:
    """FLOPs of one prompt of `tokens` (Kaplan et al. 2020: 2 per parameter per token)."""
    logits = 2 * arch.vocab_size * arch.hidden_size if arch.model_type == "llm" else 0
    return 2 * compute_parameters(arch) * tokens + logits


def prefill_seconds_bound(
    arch: Architecture, tokens: int, tp: int, accel: Accelerator, weight_precision: str
) -> float:
    """Lower bound on the time to prefill one prompt of `tokens` on TP accelerators."""
    peak, _ = compute_peak(accel, weight_precision)
    return prefill_flops(arch, tokens) / (tp * peak)


def experts_read_per_step(arch: Architecture, batch: int) -> float:
    """Routed experts a decode step reads per MoE layer: with `batch` tokens each choosing
    experts_per_token of E under balanced routing (what the routers' load balancing aims
    for), E x (1 - (1 - k/E)^batch); k at batch 1, approaching all E as the batch grows."""
    moe = arch.moe
    if moe is None:
        return 0.0
    share = moe.experts_per_token / moe.experts
    return moe.experts * (1 - (1 - share) ** batch)


def decode_bytes_per_step(
    arch: Architecture, weights: WeightBytes, kv_precision: str, context: Context, tp: int
) -> float:
    """Bytes one TP rank reads in one decode step of the whole batch: its share of the
    weights (only the routed experts the batch uses) and its copy of the batch's KV cache
    at seqLen (the worst case; sliding layers read their window)."""
    dense = weights.total - weights.routed_experts
    routed = weights.routed_experts * _routed_share(arch, context.batch)
    kv = kv_bytes_per_token_per_layer(arch, kv_precision, tp) * read_token_layers(arch, context)
    return (dense + routed) / tp + kv


def _routed_share(arch: Architecture, batch: int) -> float:
    if arch.moe is None:
        return 0.0
    return experts_read_per_step(arch, batch) / arch.moe.experts


def decode_tokens_per_second_bound(
    arch: Architecture,
    weights: WeightBytes,
    *,
    kv_precision: str,
    context: Context,
    tp: int,
    accel: Accelerator,
) -> int:
    """Upper bound on generated tokens/s of one instance at the model's batch."""
    step = decode_bytes_per_step(arch, weights, kv_precision, context, tp)
    return math.floor(context.batch * accel.bandwidth_bytes_per_s / step)


@dataclass(frozen=True)
class QpsBounds:
    """Requests/s one instance cannot exceed, by limit (None: not a limit for encoders)."""

    prefill: float
    decode: float | None = None
    request: float | None = None
    compute: str = "BF16"  # the peak the prefill bound uses

    @property
    def limits(self) -> dict[str, float]:
        found = {"decode": self.decode, "prefill": self.prefill, "request": self.request}
        return {name: qps for name, qps in found.items() if qps is not None}

    @property
    def bound(self) -> float:
        return min(self.limits.values())

    @property
    def limited_by(self) -> str:
        limits = self.limits
        return min(limits, key=limits.__getitem__)


def qps_bounds(
    arch: Architecture,
    *,
    model_type: str,
    context: Context,
    decode_tokens_per_second: int,
    prefill_seconds: float,
    compute: str,
) -> QpsBounds:
    """The three limits of one instance; `prefill_seconds` is one prompt's prefill bound.

    Encoders do one prefill per request and nothing else. For an LLM a request also holds a
    batch slot for outputTokens steps of batch / decode tokens/s each.
    """
    prefill = 1 / prefill_seconds
    if model_type != "llm":
        return QpsBounds(prefill=prefill, compute=compute)
    tokens_per_second = decode_tokens_per_second
    step_seconds = context.batch / tokens_per_second if tokens_per_second else math.inf
    request_seconds = prefill_seconds + context.output_tokens * step_seconds
    return QpsBounds(
        prefill=prefill,
        decode=tokens_per_second / context.output_tokens,
        request=context.batch / request_seconds,
        compute=compute,
    )
