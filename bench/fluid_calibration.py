"""Fluid mode against request mode on the same day of ServeGen traffic.

The 14-day benchmark (bench/simulate.py) runs in fluid mode because request replay of 14 days
is out of reach in Python; this bench measures what that costs. One day of the three ServeGen
language models, mapped and scaled as in bench/simulate.py, is simulated twice:
- requests: every arrival drawn from ServeGen's fitted distributions (`servegen_requests`,
  the rates scaled per window), each request the model's reference request, so that the two
  modes differ only in how arrivals are served, not in token lengths;
- fluid: the same windows' arrivals drawn by the same generator in numpy and counted per
  step (`servegen_counts`), served one tick at a time (and, beside it, `--smooth`: each
  window's rate spread evenly).
It prints accelerator-hours and SLO attainment per tier for each, and fluid's error against
requests. Goals (printed, not asserted): accelerator-hours within 5%, attainment within 0.5
points.

    python bench/fluid_calibration.py --traces ../shared/traces --day 1 --policies pooled,hpa
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.adapters.forked import forked_map
from xpool.resolve import resolve_platform
from xpool.sim.engine import Options
from xpool.sim.load import Load, RequestLoad
from xpool.sim.policy_comparison import PolicyComparison, setup, simulate
from xpool.sim.requests import Request
from xpool.sim.servegen import servegen_requests
from xpool.sim.service import Service

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "examples" / "platform.yaml"
SERVEGEN = (
    ("m-large", "qa-chat", 0.25),
    ("m-mid", "summary", 0.01),
    ("m-small", "batch-eval", 0.0005),
)
DAY = 86_400.0


class Reference:
    """Every request is the model's reference request (what fluid mode serves)."""

    def __init__(self, svc: Service) -> None:
        self.pair = (svc.reference_input, svc.reference_output)

    def sample(self) -> tuple[int, int]:
        return self.pair


def requests(dirs: list[Path], svcs: dict[str, Service], start: float, seed: int) -> Load:
    """The day's requests of the three models, in time order, from `start` (as t = 0)."""

    def stream() -> Iterator[Request]:
        with contextlib.ExitStack() as stack:
            streams = []
            for path, (_, model, scale) in zip(dirs, SERVEGEN, strict=True):
                files = {
                    p.name: stack.enter_context(p.open(encoding="utf-8"))
                    for p in sorted(path.glob("chunk-*-trace.csv"))
                }
                streams.append(
                    servegen_requests(
                        files,
                        model,
                        seed=seed,
                        tokens=Reference(svcs[model]),
                        start=start,
                        end=start + DAY,
                        scale=scale,
                    )
                )
            for r in heapq.merge(*streams, key=lambda r: r.t):
                yield Request(r.t - start, r.model, r.input_tokens, r.output_tokens)

    return RequestLoad(stream, DAY)


def compare(
    load: Load, svcs: dict[str, Service], spec, policies: list[str], options: Options
) -> tuple[float, PolicyComparison]:
    started = time.perf_counter()
    comparison = simulate(spec, svcs, load, policies, options, 15.0, forked_map)
    return time.perf_counter() - started, comparison


def _row(label: str, comparison: PolicyComparison, policy: str, wall: float) -> list[str]:
    r = comparison.result(policy)
    assert r is not None
    slo = [
        f"{t} {r.tiers[t].attainment:.2%}" if r.tiers[t].attainment is not None else f"{t} -"
        for t in sorted(r.tiers)
    ]
    return [label, policy, f"{r.accelerator_hours:.1f}", *slo, f"{wall:.0f} s"]


def errors(fluid: PolicyComparison, reqs: PolicyComparison, policy: str) -> str:
    f, r = fluid.result(policy), reqs.result(policy)
    assert f is not None and r is not None
    hours = f.accelerator_hours / r.accelerator_hours - 1
    points = {
        t: 100 * ((f.tiers[t].attainment or 0) - (r.tiers[t].attainment or 0))
        for t in sorted(r.tiers)
    }
    worst = max(abs(p) for p in points.values())
    goal = "met" if abs(hours) <= 0.05 and worst <= 0.5 else "NOT met"
    per = ", ".join(f"{t} {p:+.2f}" for t, p in points.items())
    return f"{policy}: acc-hours {hours:+.1%}, attainment points {per} (goal 5% / 0.5: {goal})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=Path, metavar="DIR", help="holds servegen-language/")
    parser.add_argument("--day", type=int, default=1, help="which day of the traces (1-14)")
    parser.add_argument("--policies", default="pooled", help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes", default="fluid,smooth,requests", help="comma-separated (requests is slow)"
    )
    args = parser.parse_args()
    dirs = [(args.traces or Path("-")) / "servegen-language" / name for name, _, _ in SERVEGEN]
    if args.traces is None or not all(d.is_dir() for d in dirs):
        print(
            "bench/fluid_calibration.py: pass --traces DIR holding servegen-language/"
            "{m-large,m-mid,m-small}/ (github.com/alibaba/ServeGen, data/language/)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    start = (args.day - 1) * DAY
    resolved = resolve_platform(PLATFORM)
    spec, svcs = setup(resolved.platform, resolved.plan, [m for _, m, _ in SERVEGEN])
    traces = [
        parse_trace(f"servegen:{d}={model}*{scale}")
        for d, (_, model, scale) in zip(dirs, SERVEGEN, strict=True)
    ]
    fluid_load = build_load(
        traces,
        fluid=None,
        start=start,
        duration=DAY,
        speedup=1.0,
        seed=args.seed,
        run_all=forked_map,
    )
    base = Options(seed=args.seed)
    loads = {
        "fluid": (fluid_load, base),
        "smooth": (fluid_load, replace(base, variability=False)),
        "requests": (requests(dirs, svcs, start, args.seed), base),
    }
    modes = [m.strip() for m in args.modes.split(",") if m.strip() in loads]
    runs = {m: compare(loads[m][0], svcs, spec, policies, loads[m][1]) for m in modes}
    print(f"ServeGen day {args.day}, 3 models on examples/platform.yaml")
    for label, (wall, comparison) in runs.items():
        for policy in policies:
            print(" | ".join(_row(label, comparison, policy, wall)))
    for label in ("fluid", "smooth"):
        for policy in policies if label in runs and "requests" in runs else ():
            print(f"{label} vs requests, " + errors(runs[label][1], runs["requests"][1], policy))


if __name__ == "__main__":
    main()
