"""Transformer shapes that decide memory and compute: layers, heads, KV layout, experts, windows.

The catalogued shapes come from each model's Hugging Face `config.json`;
`xpool.catalog.hf_config.from_hf_config` reads any such file, so users can plan models the
catalog does not know. A dense decoder needs only the top-level fields; the optional parts
describe what dense arithmetic gets wrong:

- `moe`: routed experts. Memory holds every expert; a token computes only `experts_per_token`
  of them, hence `active_parameters`.
- `mla`: DeepSeek's multi-head latent attention. The KV cache holds one latent vector per token
  and layer (`num_kv_heads` 1, `head_dim` = kv_lora_rank + qk_rope_head_dim), which vLLM keeps
  whole on every tensor-parallel rank.
- `sliding_window`: layers that attend only to the last `tokens` tokens and so cache no more.
- `quantization`: the checkpoint's own `quantization_config` (bits, groups, modules kept 16-bit).
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from xpool.catalog.data import load_catalog_yaml


class _Shape(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class MixtureOfExperts(_Shape):
    """Sparse MLP layers (Mixtral, Qwen-MoE, DeepSeek-MoE, gpt-oss config keys).

    `moe_layers` of the model's layers hold `experts` routed experts of width
    `expert_intermediate_size`, of which each token uses `experts_per_token`, plus shared
    experts (always used) of total width `shared_intermediate_size`; the other layers are
    dense MLPs of the architecture's `intermediate_size`.
    """

    experts: int
    experts_per_token: int
    expert_intermediate_size: int
    shared_intermediate_size: int = 0
    moe_layers: int


class LatentAttention(_Shape):
    """Multi-head latent attention (DeepSeek-V2/V3/R1: kv_lora_rank, qk_rope_head_dim, ...).

    vLLM caches `kv_lora_rank + qk_rope_head_dim` values per token and layer (the compressed
    KV and the decoupled RoPE key; `vllm/model_executor/models/deepseek_v2.py`,
    `DeepseekV2MLAAttention`), with no separate V and no split across TP ranks.
    """

    kv_lora_rank: int
    qk_rope_head_dim: int
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None = None


class SlidingWindow(_Shape):
    """`layers` of the model's layers attend to the last `tokens` tokens only (the others,
    if any, to the whole context): Mistral-7B-v0.1 (all layers), Gemma-2/3 and gpt-oss
    (alternating or patterned `layer_types`)."""

    tokens: int
    layers: int


QuantMethod = Literal["awq", "gptq", "fp8", "bitsandbytes"]


class Quantization(_Shape):
    """How a quantized checkpoint stores its linear layers (config.json `quantization_config`).

    `group_size` weights along a row's input share one scale (None: one scale per output
    channel, GPTQ's group_size -1); FP8 checkpoints may scale `block` [out, in] tiles instead;
    bitsandbytes 4-bit scales blocks of 64 weights, `double_quant` storing those scales in
    8 bits. `unquantized` pairs a weight matrix (as `xpool.catalog.layers.weight_matrices`
    names it) with the number of layers in which the checkpoint keeps it 16-bit
    (`modules_to_not_convert`); pairs rather than a mapping keep the shape hashable.
    """

    method: QuantMethod
    bits: int
    group_size: int | None = None
    block: tuple[int, int] | None = None
    zero_point: bool = False
    double_quant: bool = False
    static_activation_scale: bool = False
    lm_head: bool = False  # GPTQ `lm_head: true` quantizes the output projection too
    unquantized: tuple[tuple[str, int], ...] = ()

    @property
    def weight_precision(self) -> str:
        """The platform file's weightPrecision for these weights: fp8, or int<bits> (NF4/FP4
        bitsandbytes weights count as int4: four bits per weight)."""
        if self.method == "fp8":
            return "fp8"
        return f"int{self.bits}"

    def unquantized_layers(self, matrix: str) -> int:
        """Layers in which `matrix` stays 16-bit (0: quantized everywhere)."""
        return dict(self.unquantized).get(matrix, 0)

    def describe(self) -> str:
        """e.g. 'awq 4-bit, group 128' for messages."""
        grouping = ""
        if self.block is not None:
            grouping = f", block {self.block[0]}x{self.block[1]}"
        elif self.group_size is not None:
            grouping = f", group {self.group_size}"
        return f"{self.method} {self.bits}-bit{grouping}"


class Architecture(_Shape):
    key: str
    display_name: str
    hf_repo: str | None = None
    model_type: str = "llm"
    family: str
    xinference_family: str | None = None  # builtin family a custom registration inherits from
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int  # MLA: 1 (one latent vector per token and layer)
    head_dim: int  # MLA: kv_lora_rank + qk_rope_head_dim (what vLLM caches per layer)
    intermediate_size: int  # dense MLP layers (MoE: the layers without experts, if any)
    vocab_size: int
    max_position_embeddings: int | None = None
    tie_word_embeddings: bool = False
    gated_mlp: bool = True  # SwiGLU/GeGLU: gate, up and down matrices; else up and down only
    moe: MixtureOfExperts | None = None
    mla: LatentAttention | None = None
    sliding_window: SlidingWindow | None = None
    quantization: Quantization | None = None
    parameters: int
    source: str
    notes: str = ""

    @property
    def expert_parameters(self) -> int:
        """Weights of one routed expert in one layer (gate, up and down matrices)."""
        if self.moe is None:
            return 0
        return (3 if self.gated_mlp else 2) * self.hidden_size * self.moe.expert_intermediate_size

    @property
    def active_parameters(self) -> int:
        """Parameters one token's forward pass uses: all of them, less the routed experts the
        router does not pick (experts - experts_per_token in each MoE layer)."""
        if self.moe is None:
            return self.parameters
        unused = self.moe.experts - self.moe.experts_per_token
        return self.parameters - self.moe.moe_layers * unused * self.expert_parameters

    @property
    def mlp_width_per_token(self) -> int:
        """Intermediate width one token's MLP computes in the widest layer: the dense width,
        or its experts' (experts_per_token x expert width + shared width) in a MoE layer."""
        if self.moe is None:
            return self.intermediate_size
        routed = self.moe.experts_per_token * self.moe.expert_intermediate_size
        moe_width = routed + self.moe.shared_intermediate_size
        if self.moe.moe_layers == self.num_layers:
            return moe_width
        return max(moe_width, self.intermediate_size)


@cache
def architectures() -> dict[str, Architecture]:
    """Every catalogued architecture by key; loaded once per process."""
    return {
        key: Architecture(key=key, **spec)
        for key, spec in load_catalog_yaml("architectures.yaml").items()
    }


class ConfigJsonError(ValueError):
    """A config.json the planner cannot size; `key` names the key at fault, if one is."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
