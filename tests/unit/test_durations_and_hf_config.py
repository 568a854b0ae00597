"""Durations as users write them; architectures read from a Hugging Face config.json."""

from __future__ import annotations

import pytest

from xpool.catalog.architectures import ConfigJsonError, architectures
from xpool.catalog.hf_config import from_hf_config
from xpool.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), (15, 15), ("2d", 172800)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["30 seconds", "-5s", "", "5x", True, -1])
def test_parse_duration_refuses(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [30, 300, 3600, 0.25, 90])
def test_format_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


LLAMA_31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "tie_word_embeddings": False,
    "vocab_size": 128256,
}


def test_hf_config_matches_catalog_shape_and_parameters():
    arch = from_hf_config(LLAMA_31_8B_CONFIG, key="llama", source="test")
    catalogued = architectures()["llama-3.1-8b-instruct"]
    for field in ("num_layers", "num_heads", "num_kv_heads", "head_dim", "hidden_size"):
        assert getattr(arch, field) == getattr(catalogued, field)
    assert arch.parameters == catalogued.parameters  # Llama has no biases: exact


def test_hf_config_explicit_head_dim_wins():
    config = dict(LLAMA_31_8B_CONFIG, head_dim=256)
    assert from_hf_config(config, key="x", source="t").head_dim == 256


def test_hf_config_glm_names():
    glm = {
        "model_type": "chatglm",
        "num_layers": 40,
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "multi_query_group_num": 2,
        "kv_channels": 128,
        "ffn_hidden_size": 13696,
        "padded_vocab_size": 151552,
        "seq_length": 131072,
    }
    arch = from_hf_config(glm, key="glm", source="t")
    assert (arch.num_layers, arch.num_kv_heads, arch.head_dim) == (40, 2, 128)


def test_hf_config_missing_fields_named():
    with pytest.raises(ConfigJsonError, match="num_hidden_layers"):
        from_hf_config({"hidden_size": 8, "num_attention_heads": 2}, key="x", source="t")
