"""Throughput bounds: decode is memory-bound, prefill is compute-bound (roofline)."""

from __future__ import annotations

import math

from xpool.catalog.accelerators import Accelerator
from xpool.catalog.architectures import Architecture
from xpool.config.models import Context


def decode_tokens_per_second_bound(
    *, weight_bytes: int, kv_bytes_per_token: int, context: Context, tp: int, accel: Accelerator
) -> int:
    """Upper bound on generated tokens/s of one instance at the model's batch.

    Each decode step reads every weight once and the KV cache of every sequence in the
    batch (at full seqLen, the worst case), spread over TP accelerators' bandwidth, and
    yields one token per sequence.
    """
    bytes_per_step = weight_bytes + context.batch * context.seq_len * kv_bytes_per_token
    steps_per_second = tp * accel.bandwidth_bytes_per_s / bytes_per_step
    return math.floor(context.batch * steps_per_second)


def prefill_seconds_bound(arch: Architecture, tokens: int, tp: int, accel: Accelerator) -> float:
    """Lower bound on prefill time: 2 FLOPs per parameter per token at dense BF16 peak."""
    return 2 * arch.parameters * tokens / (tp * accel.bf16_dense_tflops * 1e12)


def estimated_qps(
    *,
    model_type: str,
    decode_bound: int,
    prefill_seconds: float,
    context: Context,
    efficiency: float,
) -> float:
    """Requests/s of one instance when no measured figure is given.

    LLMs: the decode bound x efficiency over the tokens each request generates.
    Encoders: one request is one prefill of seqLen tokens, batched.
    """
    if model_type == "llm":
        return decode_bound * efficiency / context.output_tokens
    return efficiency / prefill_seconds
