"""Xinference launch specs and custom-model registrations, one per model version.

Every model version is registered as a custom model named `<model>-v<version>` (dots become
underscores: Xinference model names allow only letters, digits, `_` and `-`), so the exact
source of each version is pinned and two versions never share a name. An instance of it is
launched with `replica: 1` and the model UID `<model>--<version>--<n>`: the spec carries the
template `model_uid` with a literal `{n}` that the launcher fills with the instance number.
Worker pinning (`worker_ip`, `gpu_idx`) is chosen at launch, so it is null here.
"""

from __future__ import annotations

import math
from typing import Any

from xpool.capacity.plan import CapacityPlan
from xpool.catalog.architectures import Architecture
from xpool.config.derived_names import registered_name as registered_name
from xpool.config.models import Model, ModelVersion, Platform

# Xinference's spelling of model types (launch_model(model_type=...), register_model).
MODEL_TYPES = {"llm": "LLM", "embedding": "embedding", "rerank": "rerank"}

# Engine names in the platform file -> Xinference's `model_engine` spelling. vllm-ascend is
# the vLLM hardware plugin for Ascend: Xinference launches it as vLLM. MindIE is the engine of
# Xinference Enterprise on Ascend. Unknown names pass through unchanged.
ENGINES = {
    "vllm": "vLLM",
    "vllm-ascend": "vLLM",
    "sglang": "SGLang",
    "transformers": "Transformers",
    "mindie": "MindIE",
    "llama.cpp": "llama.cpp",
    "sentence_transformers": "sentence_transformers",
}
DEFAULT_ENGINES = {
    ("llm", "nvidia"): "vllm",
    ("llm", "ascend"): "vllm-ascend",
    ("llm", "cpu"): "transformers",
}

# weightPrecision -> (model_format, quantization) as Xinference names them: 16/32-bit weights
# are plain PyTorch checkpoints; INT8 and INT4 mean a GPTQ (INT8) or AWQ (INT4) checkpoint,
# FP8 an FP8 checkpoint. The version's source must hold weights in that format.
FORMATS = {
    "fp32": ("pytorch", "none"),
    "bf16": ("pytorch", "none"),
    "fp16": ("pytorch", "none"),
    "fp8": ("fp8", "FP8"),
    "int8": ("gptq", "Int8"),
    "int4": ("awq", "Int4"),
}

# The platform file declares no languages; registrations need one (the article's users).
LANGUAGES = ["en", "zh"]


def engine_for(model: Model, version: ModelVersion, vendor: str) -> str:
    name = version.engines.get(vendor) or DEFAULT_ENGINES.get(  # type: ignore[call-overload]
        (model.type, vendor), "sentence_transformers"
    )
    return ENGINES.get(name, name)


def size_in_billions(parameters: int) -> int | str:
    """Xinference spells sizes as integers, or with `_` for fractions: 0.5B -> "0_5"."""
    billions = parameters / 1e9
    if billions >= 1:
        return math.floor(billions)
    tenths = max(1, math.floor(billions * 10))
    return f"0_{tenths}"


def _hub(source: str) -> dict[str, Any]:
    """Where Xinference finds the weights: a hub id pinned to `@revision` when given, or a URI."""
    scheme, _, rest = source.partition("://")
    hubs = {"hf": "huggingface", "modelscope": "modelscope"}
    if scheme in hubs:
        model_id, _, revision = rest.partition("@")
        return {
            "model_hub": hubs[scheme],
            "model_id": model_id,
            "model_uri": None,
            "model_revision": revision or None,
        }
    return {
        "model_hub": "huggingface",
        "model_id": None,
        "model_uri": source,
        "model_revision": None,
    }


def registration(model: Model, version: ModelVersion, arch: Architecture) -> dict[str, Any]:
    model_format, quantization = FORMATS[version.weight_precision]
    spec = {"model_format": model_format, "quantization": quantization, **_hub(version.source)}
    name = registered_name(model.name, version.version)
    if model.type == "llm":
        spec["model_size_in_billions"] = size_in_billions(arch.parameters)
        extra = {"chat_template": version.chat_template} if version.chat_template else {}
        return {
            "version": 2,
            "model_name": name,
            # A builtin family gives the registration its chat template and engine support.
            "model_family": arch.xinference_family or name,
            "model_description": f"{model.name} {version.version} ({arch.display_name})",
            "context_length": arch.max_position_embeddings or model.context.seq_len,
            "model_lang": LANGUAGES,
            "model_ability": ["generate", "chat"],
            "model_specs": [spec],
            "is_builtin": False,
            **extra,
        }
    body: dict[str, Any] = {
        "version": 2,
        "model_name": name,
        "language": LANGUAGES,
        "max_tokens": model.context.seq_len,
        "model_specs": [spec],
        "is_builtin": False,
    }
    if model.type == "embedding":
        body["dimensions"] = arch.hidden_size
    else:
        body["type"] = "normal"
    return body


def launch_specs(
    platform: Platform, plan: CapacityPlan, archs: dict[str, Architecture]
) -> list[dict[str, Any]]:
    """One entry per model version, in platform-file order, on the pool the planner chose."""
    rows = {(r.model, r.version, r.pool): r for r in plan.models}
    out: list[dict[str, Any]] = []
    for model in platform.spec.models:
        placed = plan.placements.get(model.name)
        for version in model.versions:
            pool_name = placed.pool if placed else platform.model_pools(model)[0].name
            pool = platform.pool(pool_name)
            row = rows.get((model.name, version.version, pool_name))
            tp = row.tp if row and row.tp else 1
            model_format, quantization = FORMATS[version.weight_precision]
            engine = engine_for(model, version, pool.vendor)
            launch: dict[str, Any] = {
                "model_uid": f"{model.name}--{version.version}--{{n}}",
                "model_name": registered_name(model.name, version.version),
                "model_type": MODEL_TYPES[model.type],
                "model_engine": engine,
                "model_format": model_format,
                "quantization": quantization,
                # a cpu pool has no devices: n_gpu null makes Xinference load on the CPU
                "n_gpu": None if pool.vendor == "cpu" else tp,
                "replica": 1,
                "request_limits": model.context.batch,
                "worker_ip": None,
                "gpu_idx": None,
            }
            if model.type == "llm":
                launch["model_size_in_billions"] = size_in_billions(archs[model.name].parameters)
            if engine == "vLLM":
                launch["gpu_memory_utilization"] = pool.memory_utilization
                launch["max_model_len"] = model.context.seq_len
                launch["max_num_seqs"] = model.context.batch
                launch["max_num_batched_tokens"] = model.context.max_batched_tokens
            out.append(
                {
                    "model": model.name,
                    "version": version.version,
                    "tier": model.tier,
                    "pool": pool_name,
                    "vendor": pool.vendor,
                    "registration": registration(model, version, archs[model.name]),
                    "launch": launch,
                }
            )
    return out
