"""A model is refused at validate when its tier cannot run it where the planner put it: no
worker group of the tier on the pool, or no worker of the tier there large enough for the
model's TP degree. A single-node CPU pool (one `xinference-local`) has no worker groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpool.errors import InputError
from xpool.resolve import resolve_platform

MODEL = """\
    - name: {name}
      tier: {tier}
      architecture: tiny-qwen2-chat
      versions:
        - {{version: "1", source: "hf://Qwen/Qwen2.5-0.5B-Instruct"}}
      demand: {{peakQps: 1}}
      perInstanceQps: 1
"""


def platform(tmp_path: Path, pool: str, tiers: str, models: str) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(
        "apiVersion: xpool.io/v1alpha1\nkind: Platform\nmetadata: {name: t}\nspec:\n"
        f"  pools:\n    - {pool}\n  tiers:\n{tiers}  models:\n{models}",
        encoding="utf-8",
    )
    return path


TIERS = (
    "    - {name: P0, share: 0.95, priority: 1000}\n    - {name: P2, share: 0.05, priority: 1}\n"
)


@pytest.mark.parametrize(
    ("pool", "refused"),
    [
        ("{name: cpu, vendor: cpu, accelerator: cpu, nodes: 1, acceleratorsPerNode: 8}", False),
        ("{name: cpu, vendor: cpu, accelerator: cpu, nodes: 2, acceleratorsPerNode: 4}", True),
        (
            "{name: gpu, vendor: nvidia, accelerator: rtx-5090, nodes: 1, acceleratorsPerNode: 8}",
            True,
        ),
    ],
    ids=["one-process-cpu", "cpu-workers", "gpu"],
)
def test_a_tier_without_a_worker_group_is_refused_where_workers_exist(
    tmp_path: Path, pool: str, refused: bool
):
    models = MODEL.format(name="chat", tier="P0") + MODEL.format(name="batch", tier="P2")
    path = platform(tmp_path, pool, TIERS, models)
    if not refused:
        resolve_platform(path)
        return
    with pytest.raises(InputError) as caught:
        resolve_platform(path)
    (problem,) = caught.value.problems
    assert problem.path == "spec.models[1].tier"
    assert "tier P2 has no worker group on pool" in problem.message


def test_every_tier_with_a_worker_group_passes(tmp_path: Path):
    pool = "{name: gpu, vendor: nvidia, accelerator: rtx-5090, nodes: 1, acceleratorsPerNode: 8}"
    tiers = (
        "    - {name: P0, share: 0.5, priority: 1000}\n    - {name: P2, share: 0.5, priority: 1}\n"
    )
    models = MODEL.format(name="chat", tier="P0") + MODEL.format(name="batch", tier="P2")
    resolve_platform(platform(tmp_path, pool, tiers, models))
