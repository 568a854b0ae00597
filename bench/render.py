"""Benchmark `xpool render`: 1,000 models x 3 versions over 20 pools.

Writes the generated platform to a temporary file, then `--runs` times (5): loads and plans
it (`resolve_platform`, as `xpool render` does), renders it (every Volcano object is validated
through the generated client inside `render_platform`). Prints the median seconds of each
phase and the object count. The goal is under 2 s for a whole `xpool render` on a 2-core
machine; this script reports the figures, it does not assert them.

By default each model may use 2 pools. `--every-pool` lets every model use every pool (60,000
plan rows): the case where work per version that scans every row turns quadratic. `--cli`
also times whole `xpool render`, `plan` and `validate` processes (interpreter start
included); `--write FILE` keeps the generated platform, e.g. to profile a command on it.

    python bench/render.py
    python bench/render.py --every-pool --cli
    python bench/render.py --every-pool --runs 1 --write /tmp/big.yaml
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from xpool.render import render_platform
from xpool.render.checks import check_objects
from xpool.resolve import resolve_platform

MODELS, VERSIONS, POOLS = 1000, 3, 20
ARCHS = ["qwen2.5-7b-instruct", "llama-3.1-8b-instruct", "glm-4-9b-chat", "qwen2.5-14b-instruct"]
COMMANDS = (["render"], ["plan", "-o", "json"], ["validate"])


def two_pools(pools: list[dict], m: int) -> list[str]:
    return [pools[m % POOLS]["name"], pools[(m + 1) % POOLS]["name"]]


def platform(*, every_pool: bool) -> dict:
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
            # every pool named, as a file that lists them does (the longest path)
            "pools": [p["name"] for p in pools] if every_pool else two_pools(pools, m),
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


def in_process(path: Path, runs: int) -> None:
    """Median seconds of each phase `xpool render` runs, in this process."""
    load_times, render_times, check_times = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        resolved = resolve_platform(path)
        loaded, plan = resolved.loaded, resolved.plan
        t1 = time.perf_counter()
        rendering = render_platform(loaded.platform, plan, loaded.architectures, resolved.mount)
        t2 = time.perf_counter()
        problems = check_objects([o.obj for o in rendering.objects])
        t3 = time.perf_counter()
        assert not problems, problems[:3]
        load_times.append(t1 - t0)
        render_times.append(t2 - t1)
        check_times.append(t3 - t2)
    volcano = sum(1 for o in rendering.objects if o.kind in ("Queue", "Job"))
    count = len(rendering.objects)
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


def whole_processes(path: Path, runs: int) -> None:
    """Median wall seconds of each command as a user runs it, interpreter start included."""
    for command in COMMANDS:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "xpool.cli", *command, str(path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            times.append(time.perf_counter() - t0)
        print(f"`xpool {' '.join(command)}` process, median s: {statistics.median(times):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-pool", action="store_true", help="every model may use every pool")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli", action="store_true", help="also time whole xpool processes")
    parser.add_argument("--write", metavar="FILE", help="keep the generated platform file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.write or Path(tmp) / "platform.yaml")
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        with path.open("w", encoding="utf-8") as fh:
            yaml.dump(platform(every_pool=args.every_pool), fh)
        pools = f"every pool ({POOLS})" if args.every_pool else f"2 of {POOLS} pools"
        print(
            f"platform: {MODELS} models x {VERSIONS} versions, each on {pools} "
            f"({path.stat().st_size / 1e6:.1f} MB), {args.runs} runs"
        )
        in_process(path, args.runs)
        if args.cli:
            whole_processes(path, args.runs)


if __name__ == "__main__":
    main()
