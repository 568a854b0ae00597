"""The gateway's wiring from the platform file: tiers, limits, canary versions to launch."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import EXAMPLES
from xpool.gateway.wiring import model_limits, table_for, write_token
from xpool.render.instances import stable_wants, version_wants
from xpool.render.launch import launch_specs
from xpool.resolve import resolve_platform

SECOND_VERSION = """        - {version: "1", source: "local://all-minilm-l6-v2", weightPrecision: fp32,
           engines: {cpu: sentence_transformers}, weight: 95}
        - {version: "2", source: "local://all-minilm-l6-v2", weightPrecision: fp32,
           engines: {cpu: sentence_transformers}, weight: 5}
"""


def canary_platform(tmp_path: Path) -> Path:
    text = (EXAMPLES / "quickstart.yaml").read_text()
    old = """        - {version: "1", source: "local://all-minilm-l6-v2", weightPrecision: fp32,
           engines: {cpu: sentence_transformers}}
"""
    assert old in text
    path = tmp_path / "canary.yaml"
    path.write_text(text.replace(old, SECOND_VERSION))
    return path


def test_canary_versions_with_weight_are_launched_and_weighted(tmp_path: Path):
    resolved = resolve_platform(canary_platform(tmp_path))
    loaded, plan = resolved.loaded, resolved.plan
    specs = launch_specs(loaded.platform, plan, loaded.architectures)
    wants = stable_wants(loaded.platform, specs, at_least=1)
    by_version, canaries = version_wants(loaded.platform, specs, wants)
    assert sorted(by_version) == [("chat", "1"), ("embedding", "1"), ("embedding", "2")]
    assert [(w.model, w.version, w.count, w.uids()) for w in canaries] == [
        ("embedding", "2", 1, ["embedding--2--1"])
    ]
    assert canaries[0].registration["model_name"] != wants[1].registration["model_name"]
    table = table_for(loaded.platform)
    assert table.weights("embedding") == {"1": 95.0, "2": 5.0}
    assert table.weights("chat") == {"1": 100.0}
    assert {
        m: (lim.tier, lim.request_limit) for m, lim in model_limits(loaded.platform).items()
    } == {
        "chat": ("P0", 4),
        "embedding": ("P1", 8),
    }


def test_the_admin_token_is_private(tmp_path: Path):
    path = write_token(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text().strip()) >= 32
    assert write_token(tmp_path).read_text() != ""
