"""The linear layers of an architecture, one entry per weight matrix shape.

Quantization acts on these and nothing else: embeddings are lookups, norms and biases are
vectors, and routers stay 16-bit in vLLM (`mlp.gate` is built with `quant_config=None` in
`vllm/model_executor/models/{mixtral,qwen3_moe,deepseek_v2}.py`), so a checkpoint's bytes
are these matrices in their stored format plus every other parameter at 16 bits. Names follow
the Hugging Face module paths below a decoder layer (`self_attn.q_proj`, `mlp.experts.up_proj`)
so that a checkpoint's `modules_to_not_convert` can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpool.catalog.architectures import Architecture, LatentAttention

EXPERTS = "mlp.experts."
LM_HEAD = "lm_head"


@dataclass(frozen=True)
class WeightMatrix:
    """One linear layer: `copies` matrices of in x out in each of `layers` layers."""

    name: str
    in_features: int
    out_features: int
    layers: int
    copies: int = 1  # routed experts per layer

    @property
    def parameters(self) -> int:
        return self.in_features * self.out_features * self.layers * self.copies

    @property
    def routed_expert(self) -> bool:
        return self.name.startswith(EXPERTS)


def weight_matrices(arch: Architecture) -> list[WeightMatrix]:
    """Every linear layer of `arch`: attention, dense MLPs, experts, and an untied LM head."""
    matrices = [*_attention(arch), *_dense_mlp(arch), *_experts(arch)]
    if not arch.tie_word_embeddings and arch.model_type == "llm":
        matrices.append(WeightMatrix(LM_HEAD, arch.hidden_size, arch.vocab_size, 1))
    return [m for m in matrices if m.layers > 0]


def _attention(arch: Architecture) -> list[WeightMatrix]:
    if arch.mla is not None:
        return _latent_attention(arch, arch.mla)
    h, layers = arch.hidden_size, arch.num_layers
    queries = arch.num_heads * arch.head_dim
    keys = arch.num_kv_heads * arch.head_dim
    return [
        WeightMatrix("self_attn.q_proj", h, queries, layers),
        WeightMatrix("self_attn.k_proj", h, keys, layers),
        WeightMatrix("self_attn.v_proj", h, keys, layers),
        WeightMatrix("self_attn.o_proj", queries, h, layers),
    ]


def _latent_attention(arch: Architecture, mla: LatentAttention) -> list[WeightMatrix]:
    """DeepSeek-V2/V3 MLA projections (modeling_deepseek.py `DeepseekV2Attention`)."""
    h, heads, layers = arch.hidden_size, arch.num_heads, arch.num_layers
    q_width = heads * (mla.qk_nope_head_dim + mla.qk_rope_head_dim)
    if mla.q_lora_rank is None:
        queries = [WeightMatrix("self_attn.q_proj", h, q_width, layers)]
    else:
        queries = [
            WeightMatrix("self_attn.q_a_proj", h, mla.q_lora_rank, layers),
            WeightMatrix("self_attn.q_b_proj", mla.q_lora_rank, q_width, layers),
        ]
    latent = mla.kv_lora_rank + mla.qk_rope_head_dim
    kv_width = heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    return [
        *queries,
        WeightMatrix("self_attn.kv_a_proj_with_mqa", h, latent, layers),
        WeightMatrix("self_attn.kv_b_proj", mla.kv_lora_rank, kv_width, layers),
        WeightMatrix("self_attn.o_proj", heads * mla.v_head_dim, h, layers),
    ]


def _mlp(
    prefix: str, arch: Architecture, width: int, layers: int, copies: int = 1
) -> list[WeightMatrix]:
    """Gate (if gated), up and down projections of one MLP of `width`."""
    h = arch.hidden_size
    inputs = ["gate_proj", "up_proj"] if arch.gated_mlp else ["up_proj"]
    return [
        *(WeightMatrix(f"{prefix}{name}", h, width, layers, copies) for name in inputs),
        WeightMatrix(f"{prefix}down_proj", width, h, layers, copies),
    ]


def _dense_mlp(arch: Architecture) -> list[WeightMatrix]:
    dense_layers = arch.num_layers - (arch.moe.moe_layers if arch.moe else 0)
    return _mlp("mlp.", arch, arch.intermediate_size, dense_layers)


def _experts(arch: Architecture) -> list[WeightMatrix]:
    moe = arch.moe
    if moe is None:
        return []
    routed = _mlp(EXPERTS, arch, moe.expert_intermediate_size, moe.moe_layers, moe.experts)
    shared = _mlp("mlp.shared_experts.", arch, moe.shared_intermediate_size, moe.moe_layers)
    return routed + (shared if moe.shared_intermediate_size else [])
