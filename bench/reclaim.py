"""Reclaim under contention: who takes capacity from whom when every tier wants more.

ServeGen's three language models on examples/platform.yaml's Ascend pool (32 NPUs, shares
13/10/9, printed with the figures), with the lower tiers' load raised until the pool is
contended, and every model's `instances.max` raised to the pool so that the pool, not a
model's bound, is what runs out (`--scales` changes the three rates):
  m-large x 0.25 -> qa-chat    (P0, as in bench/simulate.py)
  m-mid   x 0.03 -> summary    (P1: peaks beyond its share, so it borrows)
  m-small x 0.02 -> batch-eval (P2: a standing backlog that borrows whatever is idle)
Fluid mode, the `pooled` policy only (`decide`, the reconciler's code). Printed: instances
reclaimed, by the tier that gave them up and the tier they went to; SLO attainment per tier;
utilisation of held and of owned accelerators (busy / the pool's accelerator-time).

    python bench/reclaim.py --traces ../shared/traces --days 3
    python bench/reclaim.py --traces ../shared/traces --days 3 --scales 0.25,0.02,0.004

docs/simulation.md ("Reclaim under contention") holds the figures, before and after the
downward-only reclaim rule.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.resolve import resolve_platform
from xpool.sim.engine import Options
from xpool.sim.policy_comparison import setup, simulate

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "platform.yaml"
SERVEGEN = (
    ("m-large", "qa-chat", 0.25),
    ("m-mid", "summary", 0.03),
    ("m-small", "batch-eval", 0.02),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=3.0, help="days of ServeGen")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scales",
        default=",".join(str(scale) for _, _, scale in SERVEGEN),
        help="rate scales of m-large, m-mid, m-small (default: %(default)s)",
    )
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        required=True,
        help="directory holding servegen-language/{m-large,m-mid,m-small}/",
    )
    args = parser.parse_args()
    dirs = [args.traces / "servegen-language" / name for name, _, _ in SERVEGEN]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        print(f"bench/reclaim.py: --traces: {', '.join(missing)} not found", file=sys.stderr)
        raise SystemExit(2)

    resolved = resolve_platform(PLATFORM)
    scales = [float(s) for s in args.scales.split(",")]
    traces = [
        parse_trace(f"servegen:{d}={model}*{scale}")
        for d, (_, model, _), scale in zip(dirs, SERVEGEN, scales, strict=True)
    ]
    load = build_load(
        traces, fluid=None, start=0.0, duration=args.days * 86_400, speedup=1.0, seed=args.seed
    )
    spec, svcs = setup(resolved.loaded.platform, resolved.plan, [m for _, m, _ in SERVEGEN])
    size = {p.name: p.accelerators for p in spec.pools}
    spec = replace(
        spec,
        models=tuple(replace(m, max=size[m.pool] // m.accelerators) for m in spec.models),
    )
    started = time.perf_counter()
    comparison = simulate(spec, svcs, load, ("pooled",), Options(seed=args.seed), 15.0)
    wall = time.perf_counter() - started
    result = comparison.result("pooled")
    assert result is not None
    pools = {m.pool for m in spec.models}
    print(
        f"contended ServeGen (scales {args.scales}), {args.days:g} days, pooled, fluid mode: "
        f"{wall:.1f} s wall"
    )
    for tier in spec.tiers:
        for pool in sorted(pools):
            print(
                f"  {tier.name} on {pool}: deserved {tier.deserved.get(pool, 0)}, "
                f"guarantee {tier.guarantee.get(pool, 0)}"
            )
    print("instances reclaimed (from -> for):")
    for victim, by in sorted(result.reclaimed.items()):
        for beneficiary, count in sorted(by.items()):
            print(f"  {victim} -> {beneficiary}: {count:,}")
    if not result.reclaimed:
        print("  none")
    print("SLO attainment:")
    for name, t in sorted(result.tiers.items()):
        share = "-" if t.attainment is None else f"{t.attainment:.2%}"
        print(f"  {name}: {share} of {t.requests:,.0f} requests, {t.shed:,.0f} shed")
    held = result.utilisation
    print(
        f"utilisation: {'-' if held is None else f'{held:.1%}'} of held, "
        f"{result.owned_utilisation or 0:.1%} of owned accelerator-time; "
        f"{result.accelerator_hours:,.0f} accelerator-hours held; "
        f"{result.scale_ups:,} launches, {result.scale_downs:,} scale-downs, "
        f"{result.preemptions:,} reclaims"
    )


if __name__ == "__main__":
    main()
