"""Batch fill: does a lowest-priority batch backlog raise owned utilisation without costing the
online tiers their SLOs?

The article's pool (examples/platform.yaml, the 32-NPU Ascend pool: shares 13/10/9, P0's
guarantee 6) over ServeGen's 14 days, fluid mode, with two online tiers peaking at different
hours and a batch at the lowest tier:
  m-large x 0.25               -> qa-chat    (P0, as in bench/simulate.py)
  m-mid   x 0.01, 12 h later   -> summary    (P1, its day shifted with `@SHIFT`)
  --batch batch-eval=N@Dd      -> batch-eval (P2: one batch of N reference requests
                                  (2,048 in, 512 out) submitted at the start of every day)
Every model's `instances.max` is raised to the pool (as bench/reclaim.py does), so that the
pool, not a model's bound, limits what the batch can borrow. Printed per policy: owned
utilisation (busy accelerator-time over the pool's), held utilisation (over the accelerators
held), P0 and P1 SLO attainment, the batch's goodput (requests and tokens completed per hour
from the first submission to the last completion) and its time to complete, and the share
of the pool's accelerator-time held at all (which tells capacity no one held from capacity
held but idle). The goal line is printed, not asserted. The `siloed` policy (each tier
capped at its share) is printed beside the others when `xpool simulate --policies` knows it.

    python bench/batch_fill.py --traces ../shared/traces/servegen-language
    python bench/batch_fill.py --traces ../shared/traces/servegen-language --days 2
    python bench/batch_fill.py --traces ../shared/traces/servegen-language --band 0.9/0.6
    python bench/batch_fill.py --traces ../shared/traces/servegen-language --days 3 \
        --report docs/simulation/batch_fill
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.adapters.forked import forked_map
from xpool.resolve import resolve_platform
from xpool.sim.backlog import batch_jobs, parse_batch
from xpool.sim.baselines import POLICIES
from xpool.sim.engine import Options
from xpool.sim.policy_comparison import PolicyComparison, setup, simulate
from xpool.sim.report import figures, markdown
from xpool.sim.results import PolicyResult

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "platform.yaml"
WANTED = ("static", "hpa", "siloed", "pooled")
GOAL = "owned utilisation >= 75% with P0 SLO >= 99.5% and P1 SLO >= 99%"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _row(r: PolicyResult) -> str:
    p0, p1, b = r.tiers.get("P0"), r.tiers.get("P1"), r.batch
    assert b is not None
    req_h, tok_h, done = b.per_hour(b.completed), b.per_hour(b.tokens), b.completion_seconds
    return (
        f"| {r.policy} | {_pct(r.owned_utilisation)} | {_pct(r.utilisation)} | "
        f"{_pct(r.accelerator_seconds / r.owned_accelerator_seconds)} | "
        f"{_pct(p0 and p0.attainment)} | {_pct(p1 and p1.attainment)} | "
        f"{b.completed:,.0f} | {'-' if req_h is None else f'{req_h:,.0f}'} | "
        f"{'-' if tok_h is None else f'{tok_h / 1e6:,.2f} M'} | "
        f"{'unfinished' if done is None else f'{done / 3600:.1f} h'} | "
        f"{b.requeued:,.0f} | {r.wall_seconds:.0f} s |"
    )


def _goal(r: PolicyResult) -> str:
    owned, p0, p1 = r.owned_utilisation, r.tiers["P0"].attainment, r.tiers["P1"].attainment
    met = owned is not None and p0 is not None and p1 is not None
    met = met and owned >= 0.75 and p0 >= 0.995 and p1 >= 0.99  # type: ignore[operator]
    return f"goal {GOAL}: {r.policy} {'met' if met else 'NOT met'}"


def report(comparison: PolicyComparison, missing: list[str]) -> None:
    print(
        "| policy | util. owned | util. held | pool held | P0 SLO | P1 SLO | batch completed | "
        "requests/h | tokens/h | time to complete | re-queued | wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in comparison.results:
        print(_row(r))
    for name in missing:
        print(f"{name}: not available (`xpool simulate --policies` does not list it)")
    for r in comparison.results:
        print(_jobs(r))
    for r in comparison.results:
        print(_goal(r))


def _jobs(r: PolicyResult) -> str:
    """Each day's batch: how many finished, and their median and longest time to complete."""
    assert r.batch is not None
    hours = sorted(
        (j.finished - j.job.submitted) / 3600 for j in r.batch.jobs if j.finished is not None
    )
    if not hours:
        return f"{r.policy}: no batch finished"
    return (
        f"{r.policy}: {len(hours)} of {len(r.batch.jobs)} batches finished, "
        f"median {statistics.median(hours):.1f} h, longest {hours[-1]:.1f} h"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        required=True,
        help="ServeGen's data/language directory (holding m-large/ and m-mid/)",
    )
    parser.add_argument("--days", type=int, default=14, help="days of ServeGen")
    parser.add_argument("--shift", default="12h", help="how much later P1's day runs")
    parser.add_argument(
        "--daily", type=int, default=400_000, help="batch requests submitted every day"
    )
    parser.add_argument(
        "--reserve", type=int, default=1, help="slots per instance the batch leaves free"
    )
    parser.add_argument(
        "--band",
        default=None,
        metavar="UP/DOWN",
        help="scaleUp/scaleDown qpsRatio and utilization instead of the file's (e.g. 0.9/0.6)",
    )
    parser.add_argument(
        "--report", type=Path, metavar="DIR", help="write report.md and its plots into DIR"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dirs = [args.traces / name for name in ("m-large", "m-mid")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        print(f"bench/batch_fill.py: --traces: {', '.join(missing)} not found", file=sys.stderr)
        raise SystemExit(2)

    resolved = resolve_platform(PLATFORM)
    traces = [
        parse_trace(f"servegen:{dirs[0]}=qa-chat*0.25"),
        parse_trace(f"servegen:{dirs[1]}=summary*0.01@{args.shift}"),
    ]
    load = build_load(
        traces,
        fluid=None,
        start=0.0,
        duration=args.days * 86_400.0,
        speedup=1.0,
        seed=args.seed,
        run_all=forked_map,
    )
    spec, svcs = setup(resolved.platform, resolved.plan, ["qa-chat", "summary", "batch-eval"])
    size = {p.name: p.accelerators for p in spec.pools}
    spec = replace(
        spec, models=tuple(replace(m, max=size[m.pool] // m.accelerators) for m in spec.models)
    )
    if args.band:
        up, down = (float(x) for x in args.band.split("/"))
        scaling = replace(
            spec.scaling,
            up_qps_ratio=up,
            up_utilization=up,
            down_qps_ratio=down,
            down_utilization=down,
        )
        spec = replace(spec, scaling=scaling)
    batches = batch_jobs(
        [parse_batch(f"batch-eval={args.daily}@{day}d") for day in range(args.days)], svcs
    )
    policies = [p for p in WANTED if p in POLICIES]
    started = time.perf_counter()
    comparison = simulate(
        spec,
        svcs,
        load,
        policies,
        Options(
            seed=args.seed,
            batches=tuple(batches),
            batch_reserve=args.reserve,
        ),
        15.0,
        forked_map,
    )
    print(
        f"ServeGen {args.days} days: qa-chat (P0) m-large x 0.25, summary (P1) m-mid x 0.01 "
        f"{args.shift} later, batch-eval (P2) {args.daily:,} requests a day, "
        f"{args.reserve} slot(s) reserved, scaling band {spec.scaling.up_qps_ratio:g}/"
        f"{spec.scaling.down_qps_ratio:g}; fluid mode, "
        f"{time.perf_counter() - started:.0f} s wall"
    )
    report(comparison, [p for p in WANTED if p not in POLICIES])
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        figs = figures(comparison)
        for name, fig in figs.items():
            fig.savefig(args.report / f"{name}.png", dpi=110)
        (args.report / "report.md").write_text(markdown(comparison, list(figs)), encoding="utf-8")


if __name__ == "__main__":
    main()
