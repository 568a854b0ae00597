"""Per-instance token capacities: the rooflines x efficiency, measured `perInstance` figures, or
none when only a measured `perInstanceQps` is given or rerank models (the autoscaler then counts QPS)."""

from __future__ import annotations

from xpool.capacity.plan import plan_platform
from xpool.catalog.architectures import architectures
from xpool.config.models import Platform
from xpool.policy.spec import policy_spec


def _model(name: str, **extra: object) -> dict:
    return {
        "name": name,
        "tier": "P1",
        "architecture": "qwen2.5-7b-instruct",
        "versions": [{"version": "1", "source": "hf://o/m"}],
        "context": {"batch": 8, "seqLen": 4096, "outputTokens": 512},
        "demand": {"peakQps": 3},
        **extra,
    }


PLATFORM = Platform.model_validate(
    {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "p"},
        "spec": {
            "pools": [{"name": "a", "vendor": "nvidia", "accelerator": "rtx-5090", "nodes": 2}],
            "models": [
                _model("roofline"),
                _model("measured-qps", perInstanceQps=4),
                _model(
                    "measured",
                    perInstanceQps=4,
                    perInstance={"prefillTokensPerSecond": 3e4, "decodeTokensPerSecond": 1.5e3},
                ),
                _model("embed", type="embedding", architecture="all-minilm-l6-v2"),
                _model("rerank", type="rerank", architecture="all-minilm-l6-v2"),
            ],
        },
    }
)


def test_token_capacities_and_their_sources():
    archs = {m.name: architectures()[str(m.architecture)] for m in PLATFORM.spec.models}
    plan = plan_platform(PLATFORM, archs)
    rows = plan.placements
    rl = rows["roofline"]
    assert rl.token_source == "roofline estimate"
    assert rl.prefill_tokens_per_second == rl.prompt_tokens * rl.qps_bounds.prefill * 0.5
    assert rl.decode_tokens_per_second == rl.decode_tokens_per_second_bound * 0.5
    # at the reference request the token rule asks no less than the QPS rule
    assert rl.qps_per_instance * rl.prompt_tokens <= rl.prefill_tokens_per_second * 1.000001
    assert rl.qps_per_instance * 512 <= rl.decode_tokens_per_second * 1.000001

    qps = rows["measured-qps"]
    assert (qps.prefill_tokens_per_second, qps.decode_tokens_per_second) == (None, None)
    assert qps.as_dict()["tokenSource"] == "none"

    measured = rows["measured"]
    assert (measured.prefill_tokens_per_second, measured.decode_tokens_per_second) == (3e4, 1.5e3)
    assert measured.token_source == "measured"

    embed = rows["embed"]
    assert embed.decode_tokens_per_second is None and embed.prefill_tokens_per_second
    # the gateway cannot count rerank tokens: sized on QPS
    assert rows["rerank"].token_source == "none"

    spec = {m.name: m for m in policy_spec(PLATFORM, plan).models}
    assert (spec["measured"].prefill_tokens_per_s, spec["measured"].decode_tokens_per_s) == (
        3e4,
        1.5e3,
    )
    assert spec["measured-qps"].prefill_tokens_per_s is None
    assert spec["embed"].decode_tokens_per_s is None
