"""Tensor-parallel degrees an engine accepts, and the smallest one that fits memory."""

from __future__ import annotations

from collections.abc import Callable

from xpool.capacity.memory import MemoryFootprint
from xpool.catalog.architectures import Architecture


def valid_tp_degrees(arch: Architecture, accelerators_per_node: int) -> list[int]:
    """Powers of two within one node that split the heads and the quantized MLP evenly.

    vLLM requires query heads divisible by TP, and KV heads either divisible by TP or
    dividing it (then each rank holds a replica); MLA's single latent vector is on every rank.
    TP stays inside a node: across nodes it needs RDMA-class links that xpool does not assume.
    """
    degrees = []
    tp = 1
    while tp <= accelerators_per_node:
        if _splits_heads(arch, tp) and _splits_quantized_mlp(arch, tp):
            degrees.append(tp)
        tp *= 2
    return degrees


def _splits_heads(arch: Architecture, tp: int) -> bool:
    kv = arch.num_kv_heads
    return arch.num_heads % tp == 0 and (kv % tp == 0 or tp % kv == 0)


def _mlp_widths(arch: Architecture) -> list[int]:
    """Intermediate widths TP splits: the experts' and the dense MLP's (if any layer is dense)."""
    moe = arch.moe
    if moe is None:
        return [arch.intermediate_size]
    widths = [moe.expert_intermediate_size]
    if moe.shared_intermediate_size:
        widths.append(moe.shared_intermediate_size)
    if moe.moe_layers < arch.num_layers:
        widths.append(arch.intermediate_size)
    return widths


def _scale_units(arch: Architecture) -> tuple[int, ...]:
    """Widths a rank's MLP slice must be a multiple of: an FP8 checkpoint's block (gate/up
    outputs and down inputs), or an AWQ/GPTQ group (down inputs)."""
    quant = arch.quantization
    if quant is None or quant.method == "bitsandbytes":  # bitsandbytes blocks are not per row
        return ()
    if quant.block is not None:
        return quant.block
    return (quant.group_size,) if quant.group_size else ()


def _splits_quantized_mlp(arch: Architecture, tp: int) -> bool:
    """A quantized checkpoint's MLP slice per rank must hold whole scale groups: vLLM refuses
    an FP8 block checkpoint whose per-rank width is not a multiple of the block ("The
    output_size of gate's and up's weight = 192 is not divisible by weight quantization
    block_n = 128": Qwen3-30B-A3B-FP8 at TP 4) and a group-quantized one whose down_proj input
    is not a multiple of the group ("The input size is not aligned with the quantized weight
    shape")."""
    units = _scale_units(arch)
    return all(
        width % tp == 0 and all((width // tp) % unit == 0 for unit in units)
        for width in _mlp_widths(arch)
    )


def smallest_fitting(
    degrees: list[int], footprint_at: Callable[[int], MemoryFootprint]
) -> tuple[MemoryFootprint | None, MemoryFootprint | None]:
    """(the smallest TP that fits or None, the footprint at the largest TP tried).

    The second value lets a caller explain how far the best attempt fell short.
    """
    best_attempt = None
    for tp in degrees:
        fp = footprint_at(tp)
        if fp.fits:
            return fp, fp
        best_attempt = fp
    return None, best_attempt
