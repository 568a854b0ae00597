"""Benchmark `xpool render`: 1,000 models x 3 versions over 20 pools.

Writes the generated platform to a temporary file, then 5 times: loads and plans it
(`resolve_platform`, as `xpool render` does), renders it (every Volcano object is validated
through the generated client inside `render_platform`). Prints the median seconds of each
phase and the object count. The goal is under 2 s for the render on a 2-core machine; this
script reports the figure, it does not assert it.

    python bench/render.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from xpool.render import render_platform
from xpool.render.checks import check_objects
from xpool.resolve import resolve_platform

MODELS, VERSIONS, POOLS, RUNS = 1000, 3, 20, 5
ARCHS = ["qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "glm-4-9b-chat", "qwen2.5-14b-instruct"]


def platform() -> dict:
    pools = [
        {
            "name": f"pool-{i:02d}",
            "vendor": "nvidia" if i % 2 == 0 else "ascend",
            "accelerator": "rtx-5090" if i % 2 == 0 else "ascend-910b",
            "nodes": 4 + i % 5,
            "acceleratorsPerNode": 8,
        }
        for i in range(POOLS)
    ]
    models = [
        {
            "name": f"model-{m:04d}",
            "tier": ("P0", "P1", "P2")[m % 3],
            "architecture": ARCHS[m % len(ARCHS)],
            "versions": [
                {
                    "version": f"1.{v}.0",
                    "source": f"hf://example/model-{m:04d}",
                    "weightPrecision": "bf16",
                    "engines": {"nvidia": "vllm", "ascend": "vllm-ascend"},
                }
                for v in range(VERSIONS)
            ],
            "pools": [pools[m % POOLS]["name"], pools[(m + 1) % POOLS]["name"]],
            "context": {"batch": 8, "seqLen": 2048, "outputTokens": 128},
            "demand": {"peakQps": 0.5, "baseQps": 0.1},
            "instances": {"min": 0, "max": 2},
        }
        for m in range(MODELS)
    ]
    return {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "bench"},
        "spec": {"kubernetes": {"namespace": "bench"}, "pools": pools, "models": models},
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "platform.yaml"
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        with path.open("w", encoding="utf-8") as fh:
            yaml.dump(platform(), fh)
        text = path.read_text(encoding="utf-8")
        load_times, render_times, check_times, count = [], [], [], 0
        for _ in range(RUNS):
            t0 = time.perf_counter()
            resolved = resolve_platform(path)
            loaded, plan = resolved.loaded, resolved.plan
            t1 = time.perf_counter()
            rendering = render_platform(loaded.platform, plan, loaded.architectures, text)
            t2 = time.perf_counter()
            problems = check_objects([o.obj for o in rendering.objects])
            t3 = time.perf_counter()
            assert not problems, problems[:3]
            load_times.append(t1 - t0)
            render_times.append(t2 - t1)
            check_times.append(t3 - t2)
            count = len(rendering.objects)
    volcano = sum(1 for o in rendering.objects if o.kind in ("Queue", "Job"))
    print(
        f"platform: {MODELS} models x {VERSIONS} versions over {POOLS} pools "
        f"({len(text) / 1e6:.1f} MB), {RUNS} runs"
    )
    print(f"objects: {count} ({volcano} Volcano), launch specs: {len(rendering.launch_specs)}")
    print(f"render (incl. Volcano validation), median s: {statistics.median(render_times):.3f}")
    print(
        f"built-in checks (render refuses a failing set), median s: {statistics.median(check_times):.3f}"
    )
    print(f"load + plan, median s: {statistics.median(load_times):.3f}")
    totals = [sum(t) for t in zip(load_times, render_times, check_times, strict=True)]
    print(f"total (as `xpool render` runs), median s: {statistics.median(totals):.3f}")
    for note in rendering.notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
