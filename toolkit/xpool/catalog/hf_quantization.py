"""Read a config.json `quantization_config` into a `Quantization`, or refuse naming the key.

Sized: AWQ (4-bit, group-wise FP16 scales and packed zero points), GPTQ (4 or 8-bit, group-wise
or per-channel scales, zero points and `g_idx`), FP8 (per-tensor or `weight_block_size` tiles
with FP32 scales) and bitsandbytes (NF4/FP4 in blocks of 64, or LLM.int8 with a per-row
scale). Anything else (compressed-tensors, MXFP4, EXL2, 2- and 3-bit GPTQ) has no
weightPrecision in xpool and is refused. Key names follow transformers'
`utils/quantization_config.py` and vLLM's `model_executor/layers/quantization/`.
"""

from __future__ import annotations

from typing import Any

from xpool.catalog.architectures import ConfigJsonError, Quantization
from xpool.catalog.layers import LM_HEAD, WeightMatrix

KEY = "quantization_config"
SIZED_METHODS = ("awq", "gptq", "fp8", "bitsandbytes")
# Layouts xpool does not model: a GPTQ per-module override table, GPTQ quantizing only some
# modules, and bitsandbytes keeping FP16 weights next to the INT8 ones.
LAYOUT_KEYS_NOT_SIZED = {
    "gptq": ("dynamic", "modules_in_block_to_quantize"),
    "bitsandbytes": ("llm_int8_has_fp16_weight",),
}
# Module names that hold no quantizable matrix: embeddings, norms, routers (16-bit anyway).
ALWAYS_16_BIT = ("embed", "norm", "wte", "word_embeddings", "rotary")
ROUTERS = ("gate", "router", "shared_expert_gate")
MOE_PREFIXES = ("mlp.experts.", "mlp.shared_experts.")
ALIASES = {
    "block_sparse_moe": "mlp",
    "self_attention": "self_attn",
    "shared_expert": "shared_experts",
}


def read_quantization(block: Any, matrices: list[WeightMatrix], layers: int) -> Quantization | None:
    """The checkpoint's quantization, with `modules_to_not_convert` resolved to matrices."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ConfigJsonError(f"{KEY} must be an object (got {block!r})", KEY)
    method = block.get("quant_method")
    if method not in SIZED_METHODS:
        raise ConfigJsonError(
            f"{KEY}.quant_method {method!r} is not one xpool can size ({', '.join(SIZED_METHODS)}); "
            "plan the unquantized checkpoint's config.json or a catalog architecture",
            KEY,
        )
    for name in LAYOUT_KEYS_NOT_SIZED.get(method, ()):
        if block.get(name):
            raise ConfigJsonError(
                f"{KEY}.{name} changes which weights are stored how; xpool does not size that "
                "layout",
                KEY,
            )
    fields = READERS[method](block)
    skipped = _skip_list(block)
    return Quantization(
        method=method, unquantized=unquantized_layers(skipped, matrices, layers), **fields
    )


def _bits(block: dict[str, Any], allowed: tuple[int, ...]) -> int:
    bits = block.get("bits")
    if bits not in allowed:
        raise ConfigJsonError(
            f"{KEY}.bits is {bits!r}; xpool sizes {' or '.join(map(str, allowed))}-bit "
            f"{block['quant_method']} checkpoints",
            KEY,
        )
    return bits


def _group(block: dict[str, Any]) -> int | None:
    """group_size: weights per scale along a row; -1 means one scale per output channel."""
    size = block.get("group_size", 128)
    if size == -1:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigJsonError(
            f"{KEY}.group_size must be a positive integer or -1 (got {size!r})", KEY
        )
    return size


def _awq(block: dict[str, Any]) -> dict[str, Any]:
    """AutoAWQ GEMM/GEMV: qweight int4, qzeros int4 and FP16 scales per group (vLLM awq.py)."""
    return {
        "bits": _bits(block, (4,)),
        "group_size": _group(block),
        "zero_point": bool(block.get("zero_point", True)),
    }


def _gptq(block: dict[str, Any]) -> dict[str, Any]:
    """GPTQ: qweight, qzeros (stored even when symmetric), FP16 scales and an int32 g_idx per
    input feature (vLLM gptq.py creates all four); `lm_head: true` quantizes the LM head."""
    return {
        "bits": _bits(block, (4, 8)),
        "group_size": _group(block),
        "zero_point": True,
        "lm_head": bool(block.get("lm_head", False)),
    }


def _fp8(block: dict[str, Any]) -> dict[str, Any]:
    """FP8 E4M3 weights; `weight_block_size` [out, in] tiles with FP32 scales (DeepSeek-V3,
    Qwen3-FP8), else one FP32 scale per matrix; a static activation scheme adds one input
    scale per matrix (vLLM fp8.py)."""
    tiles = block.get("weight_block_size")
    if tiles is not None and not (
        isinstance(tiles, list)
        and len(tiles) == 2
        and all(isinstance(t, int) and t > 0 for t in tiles)
    ):
        raise ConfigJsonError(
            f"{KEY}.weight_block_size must be two positive integers [out, in] (got {tiles!r})",
            KEY,
        )
    return {
        "bits": 8,
        "block": tuple(tiles) if tiles is not None else None,
        "static_activation_scale": block.get("activation_scheme") == "static",
    }


def _bitsandbytes(block: dict[str, Any]) -> dict[str, Any]:
    """bitsandbytes: load_in_4bit (NF4/FP4, absmax per 64 weights, optionally itself 8-bit:
    `bnb_4bit_use_double_quant`) or load_in_8bit (LLM.int8, one FP32 scale per row)."""
    four = bool(block.get("load_in_4bit") or block.get("_load_in_4bit"))
    eight = bool(block.get("load_in_8bit") or block.get("_load_in_8bit"))
    if four == eight:
        raise ConfigJsonError(
            f"{KEY} must set exactly one of load_in_4bit and load_in_8bit "
            f"(got load_in_4bit {four}, load_in_8bit {eight})",
            KEY,
        )
    return {
        "bits": 4 if four else 8,
        "group_size": 64 if four else None,
        "double_quant": four and bool(block.get("bnb_4bit_use_double_quant", False)),
    }


READERS = {"awq": _awq, "gptq": _gptq, "fp8": _fp8, "bitsandbytes": _bitsandbytes}


def _skip_list(block: dict[str, Any]) -> list[str]:
    """Modules the checkpoint leaves unquantized, under any of the spellings in use."""
    names: list[str] = []
    for key in ("modules_to_not_convert", "ignored_layers", "llm_int8_skip_modules"):
        value = block.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigJsonError(f"{KEY}.{key} must be a list of module names", KEY)
        names += value
    return names


def _segments(name: str) -> list[str]:
    parts = [ALIASES.get(p, p) for p in name.split(".")]
    return parts[1:] if parts and parts[0] in ("model", "transformer") else parts


def _matches(pattern: list[str], path: list[str]) -> bool:
    """`pattern` is a run of whole segments of `path` ('*' matches any one segment)."""
    n = len(pattern)
    return any(
        all(p in ("*", q) for p, q in zip(pattern, path[i : i + n], strict=True))
        for i in range(len(path) - n + 1)
    )


def _paths(matrix: WeightMatrix, layers: int) -> list[list[str]]:
    """Module paths of `matrix` in each layer that holds it (`layers.<i>.<name>`).

    In a model with both, dense MLP layers come first and MoE layers last, as DeepSeek's
    first_k_dense_replace has it (Qwen-MoE's rarer mlp_only_layers are placed the same way).
    """
    if matrix.name == LM_HEAD:
        return [[LM_HEAD]]
    dense_mlp = matrix.name.startswith("mlp.") and not matrix.name.startswith(MOE_PREFIXES)
    first = 0 if dense_mlp else layers - matrix.layers
    return [
        ["layers", str(i), *matrix.name.split(".")] for i in range(first, first + matrix.layers)
    ]


def unquantized_layers(
    skipped: list[str], matrices: list[WeightMatrix], layers: int
) -> tuple[tuple[str, int], ...]:
    """(matrix name, layers in which it stays 16-bit) for the modules a checkpoint skips.

    A name matches a module when it is a run of whole segments of the module's path, like
    vLLM's prefix checks (`is_layer_skipped`); names of embeddings, norms and routers change
    nothing (they are 16-bit anyway). A name that matches nothing else is refused, so a layout
    xpool does not understand is never priced as if it were quantized.
    """
    patterns = {name: _segments(name) for name in skipped}
    kept: dict[str, int] = {}
    used: set[str] = set()
    for matrix in matrices:
        for path in _paths(matrix, layers):
            hits = [name for name, pattern in patterns.items() if _matches(pattern, path)]
            if hits:
                kept[matrix.name] = kept.get(matrix.name, 0) + 1
                used.update(hits)
    for name, pattern in patterns.items():
        if name not in used and not _always_16_bit(pattern):
            raise ConfigJsonError(
                f"{KEY} keeps '{name}' unquantized, which names no weight matrix xpool knows "
                "in this architecture; remove it or plan the unquantized config.json",
                KEY,
            )
    return tuple(sorted(kept.items()))


def _always_16_bit(pattern: list[str]) -> bool:
    last = pattern[-1] if pattern else ""
    return last in ROUTERS or any(word in last for word in ALWAYS_16_BIT)
