"""How long one policy pass (`xpool.policy.decide`) takes, for the article's platform and for a
large synthetic one: the reconciler runs it every interval and the simulator once per
simulated interval (14 days at 15 s = 80,640 passes), so its cost bounds both.

    python bench/policy.py [--models 1000] [--pools 20] [--passes 200] [--mode slo]

`--mode slo` sizes every model of both platforms with `autoscaling.mode: slo`: the synthetic
models get token figures (1,000-token prompts, 200-token answers at their QPS) and a 500 ms
TTFT SLO, their loads token rates and an arrival CV2 between 0.5 and 20.

Prints the median (and p90) milliseconds per pass over randomised observations (seeded).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from xpool.policy.decide import decide
from xpool.policy.spec import ModelSpec, PolicySpec, PoolSpec, ScalingSpec, TierSpec, policy_spec
from xpool.policy.state import InstanceObs, LoadObs, ModelMemory, Observation
from xpool.resolve import resolve_platform

ROOT = Path(__file__).resolve().parent.parent


def synthetic(models: int, pools: int) -> PolicySpec:
    pool_specs = tuple(PoolSpec(f"pool{p}", 64) for p in range(pools))

    def share(n: int) -> dict[str, int]:
        return {p.name: n for p in pool_specs}

    tiers = (
        TierSpec("P0", 1_000_000, False, False, share(26), share(12)),
        TierSpec("P1", 100_000, True, False, share(19), share(0)),
        TierSpec("P2", 1_000, True, True, share(19), share(0)),
    )
    rng = random.Random(1)
    specs = tuple(
        ModelSpec(
            f"m{n}",
            ("P0", "P1", "P2")[n % 3],
            f"pool{n % pools}",
            "1",
            rng.choice((1, 1, 2, 4)),
            rng.uniform(2, 20),
            16,
            1 if n % 3 < 2 else 0,
            6,
        )
        for n in range(models)
    )
    return PolicySpec(pool_specs, tiers, specs, ScalingSpec())


def slo_mode(spec: PolicySpec) -> PolicySpec:
    """`spec` in mode slo; models without token figures get the synthetic ones."""
    models = tuple(
        m
        if m.prefill_tokens_per_s is not None
        else replace(
            m,
            prefill_tokens_per_s=1000 * m.qps_per_instance * 4,
            decode_tokens_per_s=200 * m.qps_per_instance * 2,
            ttft_slo=0.5,
        )
        for m in spec.models
    )
    return replace(spec, models=models, scaling=replace(spec.scaling, mode="slo"))


def observation(spec: PolicySpec, rng: random.Random, now: float) -> Observation:
    instances = []
    loads = {}
    for m in spec.models:
        count = rng.randint(0, 3)
        for n in range(1, count + 1):
            state = rng.choice(("ready", "ready", "ready", "loading", "draining"))
            instances.append(
                InstanceObs(f"{m.name}--1--{n}", m.name, "1", state, now - 60, rng.randint(0, 8))
            )
        qps = rng.uniform(0, 3 * m.qps_per_instance)
        loads[m.name] = LoadObs(qps=qps)
        if spec.scaling.mode == "slo":
            loads[m.name] = LoadObs(
                qps=qps,
                prompt_tokens_per_s=1000 * qps,
                completion_tokens_per_s=200 * qps,
                arrival_cv2=rng.uniform(0.5, 20),
            )
    return Observation(now, tuple(instances), loads)


def time_passes(spec: PolicySpec, passes: int) -> list[float]:
    rng = random.Random(7)
    memory: dict[str, ModelMemory] = {}
    out = []
    for n in range(passes):
        obs = observation(spec, rng, 1000.0 + 15 * n)
        started = time.perf_counter()
        memory = dict(decide(spec, obs, memory).memory)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    p90 = statistics.quantiles(ms, n=10)[-1]
    print(f"{name}: median {statistics.median(ms):.3f} ms per pass, p90 {p90:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--mode", choices=("band", "slo"), default="band")
    args = parser.parse_args()
    resolved = resolve_platform(ROOT / "examples" / "platform.yaml")
    loaded, plan = resolved.loaded, resolved.plan
    article = policy_spec(loaded.platform, plan)
    big = synthetic(args.models, args.pools)
    if args.mode == "slo":
        article, big = slo_mode(article), slo_mode(big)
    report(
        f"examples/platform.yaml ({len(article.models)} models)", time_passes(article, args.passes)
    )
    report(
        f"synthetic ({args.models} models, {args.pools} pools x 64 accelerators)",
        time_passes(big, max(10, args.passes // 10)),
    )


if __name__ == "__main__":
    main()
