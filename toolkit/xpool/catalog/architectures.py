"""Transformer shapes that decide memory: layers, heads, KV heads (GQA), head dim, parameters.

The catalogued shapes come from each model's Hugging Face `config.json`; `from_hf_config`
reads any such file, so users can plan models the catalog does not know.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from xpool.catalog.data import load_catalog_yaml


class Architecture(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    key: str
    display_name: str
    hf_repo: str | None = None
    model_type: str = "llm"
    family: str
    xinference_family: str | None = None  # builtin family a custom registration inherits from
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int | None = None
    tie_word_embeddings: bool = False
    parameters: int
    source: str
    notes: str = ""


@cache
def architectures() -> dict[str, Architecture]:
    """Every catalogued architecture by key; loaded once per process."""
    return {
        key: Architecture(key=key, **spec)
        for key, spec in load_catalog_yaml("architectures.yaml").items()
    }


class ConfigJsonError(ValueError):
    """A config.json lacks what the planner needs; the message names the missing keys."""


def _first(config: dict[str, Any], *names: str) -> Any:
    for name in names:
        if config.get(name) is not None:
            return config[name]
    return None


def estimate_parameters(
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    intermediate: int,
    vocab: int,
    tied: bool,
    gated_mlp: bool = True,
) -> int:
    """Weights of a decoder: embeddings, attention projections, MLP, norms, LM head.

    Biases are ignored (under 0.1% of a model); a gated MLP (SwiGLU) has three matrices.
    """
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = hidden * intermediate * (3 if gated_mlp else 2)
    per_layer = attention + mlp + 2 * hidden
    embeddings = vocab * hidden * (1 if tied else 2)
    return layers * per_layer + embeddings + hidden


def _count(config: dict[str, Any], names: tuple[str, ...], default: int | None) -> int:
    """The first of `names` present, as a positive integer; ConfigJsonError names it if not."""
    value = _first(config, *names)
    if value is None:
        if default is None:
            raise ConfigJsonError(f"config.json lacks {names[0]}")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigJsonError(f"{names[0]} must be a positive integer (got {value!r})")
    return value


def from_hf_config(config: dict[str, Any], *, key: str, source: str) -> Architecture:
    """Build an Architecture from a Hugging Face config.json (Llama, Qwen2, GLM-4, BERT-like)."""
    layers = _count(config, ("num_hidden_layers", "num_layers", "n_layer"), None)
    hidden = _count(config, ("hidden_size", "d_model", "n_embd"), None)
    heads = _count(config, ("num_attention_heads", "n_head"), None)
    grouped = config.get("multi_query_attention", True)
    kv_names = ("num_key_value_heads", "multi_query_group_num") if grouped else ()
    kv_heads = _count(config, kv_names, heads) if kv_names else heads
    head_dim = _count(config, ("head_dim", "kv_channels"), hidden // heads or 1)
    intermediate = _count(config, ("intermediate_size", "ffn_hidden_size"), 4 * hidden)
    vocab = _count(config, ("vocab_size", "padded_vocab_size"), 1)
    tied = bool(config.get("tie_word_embeddings", False))
    encoder = config.get("model_type") in {"bert", "xlm-roberta", "roberta"}
    max_positions = _first(config, "max_position_embeddings", "seq_length")
    return Architecture(
        key=key,
        display_name=key,
        family=str(config.get("model_type", "unknown")),
        model_type="embedding" if encoder else "llm",
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=intermediate,
        vocab_size=vocab,
        max_position_embeddings=max_positions if isinstance(max_positions, int) else None,
        tie_word_embeddings=tied,
        parameters=estimate_parameters(
            layers=layers,
            hidden=hidden,
            heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            intermediate=intermediate,
            vocab=vocab,
            tied=tied,
            gated_mlp=not encoder,
        ),
        source=source,
    )
