"""The simulator on real traces: policy comparison tables and wall time.

1. ServeGen's three language models (14 days, fluid mode) mapped onto examples/platform.yaml,
   with rate scales chosen so each model's peak fits its tier's share of the Ascend pool
   (the published rates are Alibaba-sized: thousands of requests/s):
     m-large x 0.25   -> qa-chat    (P0; peak 146 req/s, 18 req/s per instance)
     m-mid   x 0.01   -> summary    (P1; peak 34 req/s, 4.7 req/s per instance)
     m-small x 0.0005 -> batch-eval (P2; peak 1.9 req/s, 0.61 req/s per instance, TP 2)
   Run once (it is the long one).
2. The Azure LLM inference trace 2023, conversation file (19,366 requests, 1 hour, requests
   mode) mapped onto summary; median wall time of `--repeat` runs.

Goals (printed, not asserted): pooled utilisation >= 70% with P0 SLO attainment >= 99.5%,
accelerator-hours <= 0.6 x static and <= 1.25 x the capped oracle; 14 days of ServeGen in
<= 60 s and the Azure conv hour in <= 5 s.

`--traces DIR` is the directory of the full public traces, laid out as
`DIR/azure-llm-2023/AzureLLMInferenceTrace_conv.csv` (github.com/Azure/AzurePublicDataset, `data/`)
and `DIR/servegen-language/{m-large,m-mid,m-small}/` (github.com/alibaba/ServeGen, `data/language/`).

    python bench/simulate.py --traces ../shared/traces
    python bench/simulate.py --traces ../shared/traces --days 2 --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.cli.simulate import print_table
from xpool.resolve import resolve_platform
from xpool.sim import baselines
from xpool.sim.engine import UTILISATION_SIGNALS, Options
from xpool.sim.load import RateLoad
from xpool.sim.policy_comparison import PolicyComparison, setup, simulate

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = (
    "the public traces are published at https://github.com/Azure/AzurePublicDataset (data/) and "
    "https://github.com/alibaba/ServeGen (data/language/)"
)
PLATFORM = ROOT / "examples" / "platform.yaml"
SERVEGEN = (
    ("m-large", "qa-chat", 0.25),
    ("m-mid", "summary", 0.01),
    ("m-small", "batch-eval", 0.0005),
)
POLICIES = baselines.POLICIES


def run(
    traces: list[str], duration: float | None, options: Options
) -> tuple[float, PolicyComparison]:
    """Wall seconds from reading the traces to the last policy's result, and the result."""
    resolved = resolve_platform(PLATFORM)
    loaded, plan = resolved.loaded, resolved.plan
    started = time.perf_counter()
    parsed = [parse_trace(t) for t in traces]
    load = build_load(
        parsed, fluid=None, start=0.0, duration=duration, speedup=1.0, seed=options.seed
    )
    models = sorted(load.series) if isinstance(load, RateLoad) else [t.model or "" for t in parsed]
    spec, svcs = setup(loaded.platform, plan, models)
    comparison = simulate(spec, svcs, load, POLICIES, options, 15.0)
    return time.perf_counter() - started, comparison


def trace_paths(traces: Path | None) -> tuple[list[Path], Path]:
    """The ServeGen model directories and the Azure conv file under --traces; exit 2 if absent."""
    if traces is None:
        message = f"pass --traces DIR, the directory of the full traces ({PUBLISHED})"
    else:
        serve = [traces / "servegen-language" / name for name, _, _ in SERVEGEN]
        conv = traces / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
        missing = [str(p) for p in [*serve, conv] if not p.exists()]
        if not missing:
            return serve, conv
        message = f"--traces: {', '.join(missing)} not found ({PUBLISHED})"
    print(f"bench/simulate.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=14.0, help="days of ServeGen")
    parser.add_argument("--repeat", type=int, default=3, help="Azure conv runs (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--utilisation",
        choices=UTILISATION_SIGNALS,
        default="pool",
        help="the utilisation the policy sees (docs/simulation.md)",
    )
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        help="directory holding azure-llm-2023/ and servegen-language/ (required)",
    )
    args = parser.parse_args()
    dirs, conv = trace_paths(args.traces)

    serve = [
        f"servegen:{path}={model}*{scale}"
        for path, (_, model, scale) in zip(dirs, SERVEGEN, strict=True)
    ]
    options = Options(seed=args.seed, utilisation=args.utilisation)
    seconds, comparison = run(serve, args.days * 86_400, options)
    print(f"ServeGen 3-model pool, {args.days:g} days, fluid mode: {seconds:.1f} s wall (1 run)")
    print_table(comparison)

    runs = [run([f"azure:{conv}=summary"], None, options) for _ in range(args.repeat)]
    wall = statistics.median(s for s, _ in runs)
    print(
        f"Azure conv (19,366 requests) on summary, requests mode: {wall:.2f} s wall "
        f"(median of {args.repeat})"
    )
    print_table(runs[0][1])


if __name__ == "__main__":
    main()
