"""Bytes of a model's weights at a weightPrecision: quantized matrices, scales, 16-bit rest.

Quantization stores the linear layers (`xpool.catalog.layers.weight_matrices`) in fewer bits
plus the scales (and zero points) that restore them; embeddings, norms, biases, routers and,
unless a GPTQ checkpoint says otherwise, the LM head stay 16-bit. So an INT4 model is not
parameters x 0.5 bytes: a 7B model with a 150k vocabulary keeps about 2 GB of embedding and
LM head in BF16. Layouts follow vLLM's loaders (`model_executor/layers/quantization/`).

A checkpoint's own `quantization_config` decides the layout. A declared INT8/INT4/FP8 without
one takes the layout xpool launches (render/launch.py `FORMATS`): INT4 is an AWQ checkpoint
(group 128, zero points), INT8 a GPTQ one (8-bit, group 128), FP8 vLLM's FP8 with one scale
per matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from xpool.catalog.architectures import Architecture, Quantization
from xpool.catalog.layers import LM_HEAD, WeightMatrix, weight_matrices
from xpool.config.models import PRECISION_BYTES

UNQUANTIZED_BYTES = 2  # what stays unquantized is stored in the checkpoint's 16-bit dtype
SCALE_FP16 = 2
SCALE_FP32 = 4
GPTQ_G_IDX = 4  # int32 input-channel -> group index per input feature
BNB_BLOCK = 64  # bitsandbytes 4-bit: one absmax per 64 weights
BNB_DOUBLE_QUANT_BLOCK = 256  # double quant: absmax in 8 bits, one FP32 scale per 256 of them

DEFAULT_LAYOUTS = {
    "int4": Quantization(method="awq", bits=4, group_size=128, zero_point=True),
    "int8": Quantization(method="gptq", bits=8, group_size=128, zero_point=True),
    "fp8": Quantization(method="fp8", bits=8),
}


@dataclass(frozen=True)
class WeightBytes:
    total: int
    routed_experts: int  # part of `total` in routed experts (decode reads only the chosen ones)


def layout(arch: Architecture, precision: str) -> Quantization | None:
    """How the weights are stored: the checkpoint's quantization, or xpool's default for a
    declared 8/4-bit precision, or None for plain 16/32-bit weights."""
    if arch.quantization is not None:
        return arch.quantization
    return DEFAULT_LAYOUTS.get(precision)


@lru_cache(maxsize=1024)
def weight_bytes_split(arch: Architecture, precision: str) -> WeightBytes:
    """All weight bytes, and the routed experts' share of them.

    Cached (both arguments are immutable): the planner asks at every TP degree it tries and
    again to size throughput, and walking the weight matrices dominated planning.
    """
    quant = layout(arch, precision)
    matrices = weight_matrices(arch)
    if quant is None:
        per_parameter = PRECISION_BYTES[precision]
        experts = sum(m.parameters for m in matrices if m.routed_expert)
        return WeightBytes(
            total=math.ceil(arch.parameters * per_parameter),
            routed_experts=math.ceil(experts * per_parameter),
        )
    stored = [(m, _stored_bytes(m, quant)) for m in matrices]
    quantized_parameters = sum(_quantized_parameters(m, quant) for m in matrices)
    rest = (arch.parameters - quantized_parameters) * UNQUANTIZED_BYTES
    return WeightBytes(
        total=sum(b for _, b in stored) + rest,
        routed_experts=sum(b for m, b in stored if m.routed_expert),
    )


def weight_bytes(arch: Architecture, precision: str) -> int:
    """Bytes of all weights of one instance (what every instance holds across its TP ranks)."""
    return weight_bytes_split(arch, precision).total


def _quantized_layers(matrix: WeightMatrix, quant: Quantization) -> int:
    """Layers in which `matrix` is stored quantized."""
    if matrix.name == LM_HEAD and not quant.lm_head:
        return 0
    return matrix.layers - min(matrix.layers, quant.unquantized_layers(matrix.name))


def _quantized_parameters(matrix: WeightMatrix, quant: Quantization) -> int:
    per_layer = matrix.in_features * matrix.out_features * matrix.copies
    return per_layer * _quantized_layers(matrix, quant)


def _stored_bytes(matrix: WeightMatrix, quant: Quantization) -> int:
    """Bytes of `matrix` in its quantized layers (the 16-bit ones are counted with the rest)."""
    copies = _quantized_layers(matrix, quant) * matrix.copies
    return copies * one_matrix_bytes(matrix.in_features, matrix.out_features, quant)


def one_matrix_bytes(n_in: int, n_out: int, quant: Quantization) -> int:
    """One quantized in x out weight: packed values plus the layout's scales and zero points."""
    values = math.ceil(n_in * n_out * quant.bits / 8)
    return values + _scale_bytes(n_in, n_out, quant)


def _scale_bytes(n_in: int, n_out: int, quant: Quantization) -> int:
    if quant.method == "fp8":
        return _fp8_scales(n_in, n_out, quant)
    if quant.method == "bitsandbytes":
        return _bitsandbytes_scales(n_in, n_out, quant)
    groups = math.ceil(n_in / quant.group_size) if quant.group_size else 1
    scales = groups * n_out * SCALE_FP16
    zeros = math.ceil(groups * n_out * quant.bits / 8) if quant.zero_point else 0
    g_idx = n_in * GPTQ_G_IDX if quant.method == "gptq" else 0
    return scales + zeros + g_idx


def _fp8_scales(n_in: int, n_out: int, quant: Quantization) -> int:
    """FP32 weight_scale_inv per [out, in] tile, or one per matrix; static: an input scale."""
    if quant.block is None:
        tiles = 1
    else:
        tiles = math.ceil(n_out / quant.block[0]) * math.ceil(n_in / quant.block[1])
    return (tiles + (1 if quant.static_activation_scale else 0)) * SCALE_FP32


def _bitsandbytes_scales(n_in: int, n_out: int, quant: Quantization) -> int:
    """4-bit: absmax per 64 weights (FP32, or 8-bit plus FP32 per 256 with double quant);
    8-bit: one FP32 scale per output row (LLM.int8 `SCB`)."""
    if quant.bits == 8:
        return n_out * SCALE_FP32
    blocks = math.ceil(n_in * n_out / BNB_BLOCK)
    if quant.double_quant:
        return blocks + math.ceil(blocks / BNB_DOUBLE_QUANT_BLOCK) * SCALE_FP32
    return blocks * SCALE_FP32
