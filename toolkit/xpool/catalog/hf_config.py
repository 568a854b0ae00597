"""Read a Hugging Face config.json into an `Architecture`, or refuse naming the key at fault.

Every model_type xpool sizes is listed in `FAMILIES` with what its config class implies beyond
its keys (norms, biases, tied embeddings: read from transformers' `modeling_*.py`), and the
architecture keys it understands. A key that names an architectural feature (experts, windows,
latent attention, state-space layers, nested configs, ...) and is not understood for that
model_type is refused by name: a planner that ignored it would give wrong numbers silently.
Key spellings and precedence follow vLLM's `ModelConfig` (`get_total_num_kv_heads`,
`get_head_size`, `is_deepseek_mla`) and transformers' config classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from xpool.catalog.architectures import (
    Architecture,
    ConfigJsonError,
    LatentAttention,
    MixtureOfExperts,
    SlidingWindow,
)
from xpool.catalog.hf_quantization import read_quantization
from xpool.catalog.layers import weight_matrices

# Words in a key's name that announce an architectural feature; such a key must be understood.
FEATURE_WORDS = re.compile(
    r"expert|moe|window|lora|layer_types|sparse|mamba|ssm|linear_|chunk|nextn|mtp|mla"
    r"|cross_attention|block_type|mlp_only|kv_|_kv|head_dim|multi_query|key_value|query_group"
    r"|shared|hybrid|attention_type|attn_type|attn_layer|full_attention|recurrent|rwkv|altup"
    r"|laurel|per_layer|router|topk|n_group|ep_size|scoring|new_decoder|ln_in"
)
# Object-valued keys that describe no layer; any other object is a nested (e.g. multimodal) config.
PLAIN_OBJECTS = {
    "quantization_config",
    "rope_scaling",
    "rope_parameters",
    "auto_map",
    "id2label",
    "label2id",
    "task_specific_params",
}
GQA = frozenset({"num_key_value_heads", "head_dim"})
SLIDING = frozenset({"sliding_window", "layer_types"})
QWEN_WINDOW = frozenset({"use_sliding_window", "max_window_layers"})
ROUTING = frozenset(
    {"num_experts_per_tok", "norm_topk_prob", "router_aux_loss_coef", "output_router_logits"}
)
QWEN_MOE = ROUTING | {
    "num_experts",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "decoder_sparse_step",
    "mlp_only_layers",
}
DEEPSEEK = ROUTING | {
    "kv_lora_rank",
    "q_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "v_head_dim",
    "n_routed_experts",
    "n_shared_experts",
    "moe_intermediate_size",
    "first_k_dense_replace",
    "moe_layer_freq",
    "num_nextn_predict_layers",  # the MTP layer: loaded only as a speculative draft model
    "topk_method",
    "n_group",
    "topk_group",
    "ep_size",
    "scoring_func",
    "routed_scaling_factor",
    "aux_loss_alpha",
    "seq_aux",
    "num_key_value_heads",
}
FALCON = frozenset(
    {
        "multi_query",
        "num_kv_heads",
        "n_head_kv",
        "new_decoder_architecture",
        "num_ln_in_parallel_attn",
    }
)


@dataclass(frozen=True)
class Family:
    """What a model_type's config class implies beyond its keys, and the feature keys it has.

    `window`: which layers a `sliding_window` applies to without `layer_types`: "all"
    (Mistral), "qwen" (use_sliding_window, layers from max_window_layers on), "alternate"
    (Gemma-2: even layers), "pattern" (Gemma-3: sliding_window_pattern), or None (the key
    needs `layer_types`). `experts`: the MoE key family ("mixtral", "qwen", "deepseek").
    """

    keys: frozenset[str] = GQA
    norms_per_layer: int = 2
    qkv_bias: bool = False
    qk_norm: bool = False
    tied_by_default: bool = False
    window: str | None = None
    experts: str | None = None


FAMILIES: dict[str, Family] = {
    "llama": Family(keys=GQA | SLIDING),
    "mistral": Family(keys=GQA | SLIDING, window="all"),
    "mixtral": Family(
        keys=GQA | SLIDING | ROUTING | {"num_local_experts", "router_jitter_noise"},
        window="all",
        experts="mixtral",
    ),
    "qwen2": Family(keys=GQA | SLIDING | QWEN_WINDOW, qkv_bias=True, window="qwen"),
    "qwen2_moe": Family(
        keys=GQA | SLIDING | QWEN_WINDOW | QWEN_MOE, qkv_bias=True, window="qwen", experts="qwen"
    ),
    "qwen3": Family(keys=GQA | SLIDING | QWEN_WINDOW, qk_norm=True, window="qwen"),
    "qwen3_moe": Family(
        keys=GQA | SLIDING | QWEN_WINDOW | QWEN_MOE, qk_norm=True, window="qwen", experts="qwen"
    ),
    "gemma": Family(tied_by_default=True),
    "gemma2": Family(
        keys=GQA | SLIDING | {"sliding_window_size"},
        norms_per_layer=4,
        tied_by_default=True,
        window="alternate",
    ),
    "gemma3_text": Family(
        keys=GQA | SLIDING | {"sliding_window_pattern", "_sliding_window_pattern"},
        norms_per_layer=4,
        qk_norm=True,
        tied_by_default=True,
        window="pattern",
    ),
    "deepseek_v2": Family(keys=frozenset(DEEPSEEK), experts="deepseek"),
    "deepseek_v3": Family(keys=frozenset(DEEPSEEK), experts="deepseek"),
    "chatglm": Family(
        keys=frozenset(
            {"multi_query_attention", "multi_query_group_num", "kv_channels", "add_qkv_bias"}
        )
    ),
}
# Falcon (layer norms with biases, a plain 4h MLP, fused QKV) has its own reader.
FALCON_TYPES = ("falcon", "RefinedWeb", "RefinedWebModel")
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta")
KNOWN_TYPES = (*FAMILIES, *FALCON_TYPES, *ENCODER_TYPES)

LAYERS = ("num_hidden_layers", "num_layers", "n_layer")
HIDDEN = ("hidden_size", "d_model", "n_embd")
HEADS = ("num_attention_heads", "n_head")
VOCAB = ("vocab_size", "padded_vocab_size")


class Keys:
    """A config.json whose readers name the key at fault in every refusal."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def first(self, *names: str) -> tuple[str, Any]:
        """(name, value) of the first of `names` set to a non-null value, else (names[0], None)."""
        for name in names:
            if self.data.get(name) is not None:
                return name, self.data[name]
        return names[0], None

    def count(self, *names: str, default: int | None = None) -> int:
        """The first of `names` as a positive integer, or `default`; refuse naming the key."""
        name, value = self.first(*names)
        if value is None:
            if default is None:
                raise ConfigJsonError(f"config.json lacks {name}", name)
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigJsonError(f"{name} must be a positive integer (got {value!r})", name)
        return value

    def optional_count(self, name: str) -> int:
        """`name` as a positive integer, or 0 when it is absent, null or 0."""
        return self.count(name) if self.data.get(name) else 0

    def flag(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigJsonError(f"{name} must be true or false (got {value!r})", name)
        return value

    def int_list(self, name: str) -> list[int]:
        value = self.data.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise ConfigJsonError(f"{name} must be a list of layer indices (got {value!r})", name)
        return value


def from_hf_config(config: dict[str, Any], *, key: str, source: str) -> Architecture:
    """Build an Architecture from a Hugging Face config.json, or raise ConfigJsonError naming
    the key that is missing, contradictory or not understood."""
    keys = Keys(config)
    layers = keys.count(*LAYERS)
    hidden = keys.count(*HIDDEN)
    heads = keys.count(*HEADS)
    model_type = _model_type(keys)
    _refuse_unknown_features(keys, model_type)
    if model_type in FALCON_TYPES:
        shape, extra = _falcon(keys, model_type, layers, hidden, heads)
    elif model_type in ENCODER_TYPES:
        shape, extra = _encoder(keys, layers, hidden, heads)
    else:
        shape, extra = _decoder(keys, FAMILIES[model_type], layers, hidden, heads)
    max_positions = keys.first("max_position_embeddings", "seq_length")[1]
    arch = Architecture(
        key=key,
        display_name=key,
        family=model_type,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        max_position_embeddings=max_positions if isinstance(max_positions, int) else None,
        parameters=0,
        source=source,
        **shape,
    )
    matrices = weight_matrices(arch)
    quantization = read_quantization(config.get("quantization_config"), matrices, layers)
    parameters = sum(m.parameters for m in matrices) + extra
    return arch.model_copy(update={"parameters": parameters, "quantization": quantization})


def _model_type(keys: Keys) -> str:
    model_type = keys.data.get("model_type")
    if model_type not in KNOWN_TYPES:
        raise ConfigJsonError(
            f"model_type {model_type!r} is not one xpool sizes ({', '.join(KNOWN_TYPES)}); "
            "use a catalog architecture or a config.json of one of these",
            "model_type",
        )
    return model_type


def _understood(model_type: str) -> frozenset[str]:
    if model_type in FALCON_TYPES:
        return FALCON
    if model_type in ENCODER_TYPES:
        return frozenset()
    return FAMILIES[model_type].keys


def _refuse_unknown_features(keys: Keys, model_type: str) -> None:
    """Refuse keys naming features this model_type's sizing does not cover, and nested configs."""
    understood = _understood(model_type)
    unknown = [
        name
        for name, value in keys.data.items()
        if name not in understood
        and value not in (None, False, [], 0)
        and (FEATURE_WORDS.search(name) or (isinstance(value, dict) and name not in PLAIN_OBJECTS))
    ]
    if unknown:
        raise ConfigJsonError(
            f"config.json has {', '.join(unknown)}, which xpool does not size for model_type "
            f"'{model_type}'; a plan that ignored {'them' if len(unknown) > 1 else 'it'} would "
            "be wrong, so use a catalog architecture or a config.json xpool understands",
            unknown[0],
        )


def _tied(keys: Keys, default: bool) -> bool:
    """tie_word_embeddings, or the config class default when the key is absent (Gemma and
    Falcon configs omit it and tie; Llama, Qwen2 and DeepSeek default to untied)."""
    return keys.flag("tie_word_embeddings", default)


def _head_dim(keys: Keys, hidden: int, heads: int) -> int:
    """head_dim, else hidden_size / num_attention_heads (vLLM `get_head_size`)."""
    if keys.data.get("head_dim") is not None or keys.data.get("kv_channels") is not None:
        return keys.count("head_dim", "kv_channels")
    if hidden % heads:
        raise ConfigJsonError(
            f"hidden_size {hidden} is not a multiple of num_attention_heads {heads} and "
            "head_dim is not set; add head_dim",
            "head_dim",
        )
    return hidden // heads


def _kv_heads(keys: Keys, heads: int) -> int:
    """KV heads (GQA), spelled num_key_value_heads or, in GLM, multi_query_group_num."""
    if keys.data.get("multi_query_attention") is False:
        return heads
    name, _ = keys.first("num_key_value_heads", "multi_query_group_num")
    return _kv_groups(name, keys.count(name, default=heads), heads)


def _kv_groups(name: str, kv: int, heads: int) -> int:
    """`kv`, which must divide the query heads: each KV head serves a group of them, and
    vLLM refuses a model whose groups are uneven."""
    if heads % kv:
        raise ConfigJsonError(
            f"{name} {kv} does not divide num_attention_heads {heads}; one of them is wrong", name
        )
    return kv


def _decoder(
    keys: Keys, family: Family, layers: int, hidden: int, heads: int
) -> tuple[dict[str, Any], int]:
    """Shape fields and the parameters outside weight matrices of a Llama-style decoder."""
    mla = _latent_attention(keys) if family.experts == "deepseek" else None
    if mla is not None:
        kv_heads, head_dim = 1, mla.kv_lora_rank + mla.qk_rope_head_dim
    else:
        kv_heads, head_dim = _kv_heads(keys, heads), _head_dim(keys, hidden, heads)
    intermediate = keys.count("intermediate_size", "ffn_hidden_size")
    moe = _experts(keys, family, layers, intermediate)
    shape = {
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate_size": intermediate,
        "vocab_size": keys.count(*VOCAB),
        "tie_word_embeddings": _tied(keys, family.tied_by_default),
        "moe": moe,
        "mla": mla,
        "sliding_window": _window(keys, family, layers),
    }
    return shape, _decoder_extra(keys, family, shape, layers, hidden, heads)


def _decoder_extra(
    keys: Keys, family: Family, shape: dict[str, Any], layers: int, hidden: int, heads: int
) -> int:
    """Parameters besides weight matrices: embeddings, norms, biases, routers."""
    head_dim, kv_heads, mla = shape["head_dim"], shape["num_kv_heads"], shape["mla"]
    per_layer = family.norms_per_layer * hidden
    if mla is not None:
        per_layer += mla.kv_lora_rank + (mla.q_lora_rank or 0)  # kv_a / q_a layer norms
    else:
        per_layer += _attention_biases(keys, family, hidden, heads, kv_heads, head_dim)
        per_layer += 2 * head_dim if family.qk_norm else 0
    if keys.flag("mlp_bias", False):
        per_layer += 2 * shape["intermediate_size"] + hidden
    routers = _router_parameters(keys, shape["moe"], hidden)
    return layers * per_layer + routers + shape["vocab_size"] * hidden + hidden


def _attention_biases(
    keys: Keys, family: Family, hidden: int, heads: int, kv_heads: int, head_dim: int
) -> int:
    """Qwen2 and GLM (add_qkv_bias) bias q, k and v; attention_bias adds o_proj's too."""
    qkv = (heads + 2 * kv_heads) * head_dim
    if keys.flag("attention_bias", False):
        return qkv + hidden
    if family.qkv_bias or keys.flag("add_qkv_bias", False):
        return qkv
    return 0


def _router_parameters(keys: Keys, moe: MixtureOfExperts | None, hidden: int) -> int:
    """Router weights (16-bit; not weight matrices xpool quantizes), DeepSeek-V3's per-expert
    score-correction bias (topk_method noaux_tc) and Qwen2-MoE's shared-expert gate."""
    if moe is None:
        return 0
    per_layer = hidden * moe.experts
    if keys.data.get("topk_method") == "noaux_tc":
        per_layer += moe.experts
    if keys.data.get("shared_expert_intermediate_size"):
        per_layer += hidden
    return moe.moe_layers * per_layer


def _latent_attention(keys: Keys) -> LatentAttention:
    """DeepSeek MLA: vLLM uses it when kv_lora_rank is set (`is_deepseek_mla`)."""
    q_lora = keys.data.get("q_lora_rank")
    return LatentAttention(
        kv_lora_rank=keys.count("kv_lora_rank"),
        qk_rope_head_dim=keys.count("qk_rope_head_dim"),
        qk_nope_head_dim=keys.count("qk_nope_head_dim"),
        v_head_dim=keys.count("v_head_dim"),
        q_lora_rank=keys.count("q_lora_rank") if q_lora is not None else None,
    )


def _experts(keys: Keys, family: Family, layers: int, intermediate: int) -> MixtureOfExperts | None:
    if family.experts is None:
        return None
    reader = {"mixtral": _mixtral_experts, "qwen": _qwen_experts, "deepseek": _deepseek_experts}
    moe = reader[family.experts](keys, layers, intermediate)
    if moe is not None and moe.experts_per_token > moe.experts:
        raise ConfigJsonError(
            f"num_experts_per_tok {moe.experts_per_token} exceeds the {moe.experts} experts",
            "num_experts_per_tok",
        )
    return moe


def _mixtral_experts(keys: Keys, layers: int, intermediate: int) -> MixtureOfExperts:
    """Mixtral: every layer holds num_local_experts experts of intermediate_size."""
    return MixtureOfExperts(
        experts=keys.count("num_local_experts"),
        experts_per_token=keys.count("num_experts_per_tok"),
        expert_intermediate_size=intermediate,
        moe_layers=layers,
    )


def _qwen_experts(keys: Keys, layers: int, intermediate: int) -> MixtureOfExperts:
    """Qwen2/3-MoE: layer i has experts unless i is in mlp_only_layers or (i + 1) is not a
    multiple of decoder_sparse_step (transformers `Qwen2MoeDecoderLayer`)."""
    step = keys.count("decoder_sparse_step", default=1)
    dense = set(keys.int_list("mlp_only_layers"))
    moe_layers = sum(1 for i in range(layers) if i not in dense and (i + 1) % step == 0)
    return MixtureOfExperts(
        experts=keys.count("num_experts"),
        experts_per_token=keys.count("num_experts_per_tok"),
        expert_intermediate_size=keys.count("moe_intermediate_size"),
        shared_intermediate_size=keys.optional_count("shared_expert_intermediate_size"),
        moe_layers=moe_layers,
    )


def _deepseek_experts(keys: Keys, layers: int, intermediate: int) -> MixtureOfExperts | None:
    """DeepSeek: layer i has n_routed_experts experts when i >= first_k_dense_replace and
    i % moe_layer_freq == 0, plus n_shared_experts shared ones of the same width
    (vLLM `deepseek_v2.py` `DeepseekV2DecoderLayer`)."""
    if keys.data.get("n_routed_experts") is None:
        return None
    first_dense = keys.data.get("first_k_dense_replace") or 0
    if not isinstance(first_dense, int) or not 0 <= first_dense <= layers:
        raise ConfigJsonError(
            f"first_k_dense_replace must be a layer count from 0 to {layers} (got {first_dense!r})",
            "first_k_dense_replace",
        )
    freq = keys.count("moe_layer_freq", default=1)
    width = keys.count("moe_intermediate_size")
    return MixtureOfExperts(
        experts=keys.count("n_routed_experts"),
        experts_per_token=keys.count("num_experts_per_tok"),
        expert_intermediate_size=width,
        shared_intermediate_size=width * keys.optional_count("n_shared_experts"),
        moe_layers=sum(1 for i in range(first_dense, layers) if i % freq == 0),
    )


def _window(keys: Keys, family: Family, layers: int) -> SlidingWindow | None:
    """Layers that attend within `sliding_window` tokens: from layer_types when the config
    lists them, else by the model_type's rule (see `Family`)."""
    has_list = keys.data.get("layer_types") is not None
    listed = _layer_types_sliding(keys, layers) if has_list else None
    tokens = keys.data.get("sliding_window")
    if family.window == "qwen" and not keys.flag("use_sliding_window", False):
        tokens = None  # Qwen configs carry a window they do not use (transformers nulls it)
    if tokens is None:
        return None
    tokens = keys.count("sliding_window")
    _check_window_spellings(keys, tokens)
    sliding = listed if listed is not None else _sliding_layer_count(keys, family, layers)
    return SlidingWindow(tokens=tokens, layers=sliding) if sliding else None


def _check_window_spellings(keys: Keys, tokens: int) -> None:
    legacy = keys.data.get("sliding_window_size")
    if legacy is not None and legacy != tokens:
        raise ConfigJsonError(
            f"sliding_window_size {legacy!r} contradicts sliding_window {tokens}",
            "sliding_window_size",
        )


def _sliding_layer_count(keys: Keys, family: Family, layers: int) -> int:
    """Sliding layers by the model_type's rule, for configs that do not list layer_types."""
    if family.window == "all":
        return layers
    if family.window == "qwen":
        return layers - min(layers, keys.count("max_window_layers", default=layers))
    if family.window == "alternate":
        return sum(1 for i in range(layers) if (i + 1) % 2)  # layer 0 sliding, 1 full, ...
    if family.window == "pattern":
        pattern = keys.count("sliding_window_pattern", "_sliding_window_pattern")
        return sum(1 for i in range(layers) if (i + 1) % pattern)
    raise ConfigJsonError(
        "sliding_window is set without layer_types, and xpool does not know which layers of "
        f"a '{keys.data.get('model_type')}' model use it; add layer_types",
        "sliding_window",
    )


def _layer_types_sliding(keys: Keys, layers: int) -> int:
    """Sliding layers in `layer_types`, which must name one known attention type per layer."""
    kinds = keys.data["layer_types"]
    if not isinstance(kinds, list) or len(kinds) != layers:
        raise ConfigJsonError(
            f"layer_types must list one attention type per layer ({layers}), got "
            f"{len(kinds) if isinstance(kinds, list) else repr(kinds)}",
            "layer_types",
        )
    unknown = sorted({k for k in kinds if k not in ("sliding_attention", "full_attention")})
    if unknown:
        raise ConfigJsonError(
            f"layer_types has {', '.join(map(str, unknown))}; xpool sizes sliding_attention "
            "and full_attention layers only",
            "layer_types",
        )
    return kinds.count("sliding_attention")


def _falcon(
    keys: Keys, model_type: str, layers: int, hidden: int, heads: int
) -> tuple[dict[str, Any], int]:
    """Falcon: fused QKV, a plain 4h GELU MLP, LayerNorms with biases, tied embeddings.

    The 40B-style 'new decoder architecture' (RefinedWeb configs, or new_decoder_architecture)
    has num_kv_heads (n_head_kv) KV groups and two norms per layer; the 7B style is multi-query
    (one KV head, vLLM `get_total_num_kv_heads`) with one norm before its parallel attention
    and MLP. vLLM forces the new architecture for RW configs of hidden_size 8192 (falcon-40b),
    which is what the RefinedWeb model_type means.
    """
    new = model_type == "RefinedWeb" or keys.flag("new_decoder_architecture", False)
    if new:
        name, _ = keys.first("num_kv_heads", "n_head_kv")
        kv = _kv_groups(name, keys.count(name, default=heads), heads)
        norms = keys.count("num_ln_in_parallel_attn", default=2)
    else:
        kv = _falcon_multi_query_heads(keys, heads)
        norms = 1 if keys.flag("parallel_attn", True) else 2
    head_dim = _head_dim(keys, hidden, heads)
    intermediate = keys.count("ffn_hidden_size", default=4 * hidden)
    shape = {
        "num_kv_heads": kv,
        "head_dim": head_dim,
        "intermediate_size": intermediate,
        "vocab_size": keys.count(*VOCAB),
        "tie_word_embeddings": _tied(keys, True),
        "gated_mlp": False,
    }
    per_layer = norms * 2 * hidden
    if keys.flag("bias", False):
        per_layer += (heads + 2 * kv) * head_dim + hidden + intermediate + hidden
    return shape, layers * per_layer + shape["vocab_size"] * hidden + 2 * hidden


def _falcon_multi_query_heads(keys: Keys, heads: int) -> int:
    """7B-style Falcon: one KV head when multi_query, else one per query head."""
    multi_query = keys.flag("multi_query", True)
    name, groups = keys.first("num_kv_heads", "n_head_kv")
    if multi_query and groups not in (None, 1):
        raise ConfigJsonError(
            f"multi_query is true but {name} is {groups}; without new_decoder_architecture "
            "Falcon has one KV head: remove one of them",
            name,
        )
    return 1 if multi_query else heads


def _encoder(keys: Keys, layers: int, hidden: int, heads: int) -> tuple[dict[str, Any], int]:
    """BERT-style encoders: MHA with biases, a plain MLP with biases, LayerNorms, position and
    token-type embeddings; no KV cache, no LM head (a pooler or classifier head, under 0.2%
    of the weights, is not counted)."""
    intermediate = keys.count("intermediate_size")
    vocab = keys.count(*VOCAB)
    positions = keys.count("max_position_embeddings", default=512)
    token_types = keys.count("type_vocab_size", default=2)
    shape = {
        "model_type": "embedding",
        "num_kv_heads": heads,
        "head_dim": _head_dim(keys, hidden, heads),
        "intermediate_size": intermediate,
        "vocab_size": vocab,
        "tie_word_embeddings": True,
        "gated_mlp": False,
    }
    per_layer = 4 * hidden + intermediate + hidden + 2 * 2 * hidden  # biases, two LayerNorms
    embeddings = (vocab + positions + token_types) * hidden + 2 * hidden
    return shape, layers * per_layer + embeddings
