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

`--slo` instead compares `autoscaling.mode: slo` with the default band on the committed day-1
excerpt of ServeGen m-large (tests/data/traces, 71,679 requests) replayed as requests onto
summary (P1, SLO p99 TTFT 800 ms) with the token lengths of the committed Azure conv excerpt:
once with ServeGen's own arrivals (Gamma/Weibull gaps, bursts) and once with Poisson arrivals
at the same 10-minute rates, where the queueing model's assumptions hold. It needs no --traces.

`--traces DIR` is the directory of the full public traces, laid out as
`DIR/azure-llm-2023/AzureLLMInferenceTrace_conv.csv` (github.com/Azure/AzurePublicDataset, `data/`)
and `DIR/servegen-language/{m-large,m-mid,m-small}/` (github.com/alibaba/ServeGen, `data/language/`).

    python bench/simulate.py --traces ../shared/traces
    python bench/simulate.py --traces ../shared/traces --days 2 --repeat 1
    python bench/simulate.py --slo
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.adapters.forked import forked_map
from xpool.cli.simulate import print_table
from xpool.resolve import resolve_platform
from xpool.sim import baselines
from xpool.sim.engine import Options
from xpool.sim.load import RateLoad, RequestLoad
from xpool.sim.policy_comparison import PolicyComparison, setup, simulate
from xpool.sim.requests import Request
from xpool.sim.servegen import WINDOW_S, servegen_rates, servegen_requests
from xpool.sim.tokens import EmpiricalTokens
from xpool.sim.traces import azure_requests

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
EXCERPTS = ROOT / "tests" / "data" / "traces"


def run(
    traces: list[str], duration: float | None, options: Options
) -> tuple[float, PolicyComparison]:
    """Wall seconds from reading the traces to the last policy's result, and the result."""
    resolved = resolve_platform(PLATFORM)
    loaded, plan = resolved.loaded, resolved.plan
    started = time.perf_counter()
    parsed = [parse_trace(t) for t in traces]
    load = build_load(
        parsed,
        fluid=None,
        start=0.0,
        duration=duration,
        speedup=1.0,
        seed=options.seed,
        run_all=forked_map,
    )
    models = sorted(load.series) if isinstance(load, RateLoad) else [t.model or "" for t in parsed]
    spec, svcs = setup(loaded.platform, plan, models)
    comparison = simulate(spec, svcs, load, POLICIES, options, 15.0, forked_map)
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


def _poisson(rates: list[tuple[float, float]], seed: int) -> list[float]:
    """Poisson arrival times at each 10-minute window's rate."""
    rng = random.Random(seed)
    out: list[float] = []
    for start, rate in rates:
        t = start
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= start + WINDOW_S:
                break
            out.append(t)
    return out


def slo_loads(seed: int) -> dict[str, RequestLoad]:
    """The committed ServeGen m-large day as requests for summary, bursty and Poisson."""
    conv = EXCERPTS / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
    lengths = list(azure_requests(conv.read_text().splitlines(), "summary", str(conv)))
    files = sorted((EXCERPTS / "servegen-language" / "m-large").glob("*.csv"))
    clients = {f.name: f.read_text().splitlines() for f in files}
    day = 86_400.0

    def published() -> Iterator[Request]:
        tokens = EmpiricalTokens.from_requests(lengths, seed)
        yield from servegen_requests(clients, "summary", seed=seed, tokens=tokens, end=day)

    times = _poisson(list(servegen_rates(clients, end=day)), seed)

    def poisson() -> Iterator[Request]:
        sample = EmpiricalTokens.from_requests(lengths, seed).sample
        for t in times:
            yield Request(t, "summary", *sample())

    return {
        "ServeGen arrivals": RequestLoad(published, day),
        "Poisson arrivals": RequestLoad(poisson, day),
    }


def compare_slo(seed: int) -> None:
    """Pooled with the band and with mode slo, at the file's scale-up step and unbounded,
    static and the oracle beside them."""
    resolved = resolve_platform(PLATFORM)
    spec, svcs = setup(resolved.loaded.platform, resolved.plan, ["summary"])
    # token figures of the instance the simulator runs, as measured `perInstance` figures
    # would be (its slot time at the reference fills the plan's QPS, which summary's prefill
    # bound sets, so its decode is slower than the plan's decode tokens/s)
    svc = svcs["summary"]
    measured = replace(
        spec.models[0],
        prefill_tokens_per_s=1 / svc.prefill_per_token,
        decode_tokens_per_s=svc.slots / svc.decode_per_token,
        max=24,  # the day's busiest window (20.6 req/s) needs about 16
    )
    spec = replace(spec, models=(measured,))
    print("mode slo vs band: summary (P1, p99 TTFT <= 800 ms), ServeGen m-large day 1 excerpt")
    print(f"{'arrivals':<18} {'policy':<22} {'acc-hours':>9} {'attain':>7} {'shed':>5}")
    for name, load in slo_loads(seed).items():
        runs = [("static", spec), ("oracle", spec)]
        for step in (spec.scaling.step, measured.max):
            for mode in ("band", "slo"):
                scaling = replace(spec.scaling, mode=mode, step=step)
                runs.append((f"pooled {mode} step {step}", replace(spec, scaling=scaling)))
        for label, variant in runs:
            policy = label.split()[0]
            result = simulate(variant, svcs, load, (policy,), Options(seed=seed), 15.0).results[0]
            tier = result.tiers.get("P1")
            attained = "-" if tier is None or tier.attainment is None else f"{tier.attainment:.1%}"
            shed = "-" if tier is None or policy == "oracle" else f"{tier.shed:.0f}"
            print(
                f"{name:<18} {label:<22} {result.accelerator_hours:>9.1f} {attained:>7} {shed:>5}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=14.0, help="days of ServeGen")
    parser.add_argument("--repeat", type=int, default=3, help="Azure conv runs (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--slo", action="store_true", help="mode slo vs the band on the committed excerpts"
    )
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        help="directory holding azure-llm-2023/ and servegen-language/ (required)",
    )
    args = parser.parse_args()
    if args.slo:
        compare_slo(args.seed)
        return
    dirs, conv = trace_paths(args.traces)

    serve = [
        f"servegen:{path}={model}*{scale}"
        for path, (_, model, scale) in zip(dirs, SERVEGEN, strict=True)
    ]
    options = Options(seed=args.seed)
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
