"""Request traces: parse times of the Azure traces, ServeGen arrival generation time and counts.

Parses the Azure LLM inference traces 2023 (conv, code) `--repeat` times and prints the median.
For each ServeGen language model it prints, from the rates alone, the requests over the whole
trace (sum of rate x 600 s over the windows) and the peak and mean summed rate; then it
generates the first `--days` days of requests once (token lengths resampled from Azure conv)
and prints the count, the seconds taken and requests per second.

`--traces DIR` is the directory of the full public traces, laid out as
`DIR/azure-llm-2023/AzureLLMInferenceTrace_{conv,code}.csv` (github.com/Azure/AzurePublicDataset,
`data/`) and `DIR/servegen-language/<model>/` (github.com/alibaba/ServeGen, `data/language/`).

    python bench/traces.py --traces ../shared/traces                # 1 day of each model
    python bench/traces.py --traces ../shared/traces --days 14 --models m-large
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

from xpool.sim.servegen import WINDOW_S, servegen_rates, servegen_requests
from xpool.sim.tokens import EmpiricalTokens
from xpool.sim.traces import azure_requests

PUBLISHED = (
    "the public traces are published at https://github.com/Azure/AzurePublicDataset (data/) and "
    "https://github.com/alibaba/ServeGen (data/language/)"
)
MODELS = ("m-large", "m-mid", "m-small")
AZURE = ("conv", "code")
DAY = 86_400.0


@contextlib.contextmanager
def clients(traces: Path, model: str):
    """Client file name -> open file, for every client of `model`."""
    with contextlib.ExitStack() as stack:
        paths = sorted((traces / "servegen-language" / model).glob("chunk-*-trace.csv"))
        yield {p.name: stack.enter_context(p.open(encoding="utf-8")) for p in paths}


def parse_azure(traces: Path, name: str) -> tuple[float, list]:
    path = traces / "azure-llm-2023" / f"AzureLLMInferenceTrace_{name}.csv"
    start = time.perf_counter()
    with path.open(encoding="utf-8") as f:
        reqs = list(azure_requests(f, name, path.name))
    return time.perf_counter() - start, reqs


def check_traces(traces: Path | None, models: list[str]) -> Path:
    """The --traces directory, holding what this run reads; exit 2 if not."""
    if traces is None:
        message = f"pass --traces DIR, the directory of the full traces ({PUBLISHED})"
    else:
        azure = [traces / "azure-llm-2023" / f"AzureLLMInferenceTrace_{n}.csv" for n in AZURE]
        serve = [traces / "servegen-language" / model for model in models]
        missing = [str(p) for p in [*azure, *serve] if not p.exists()]
        if not missing:
            return traces
        message = f"--traces: {', '.join(missing)} not found ({PUBLISHED})"
    print(f"bench/traces.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=1.0, help="days of ServeGen to generate")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each parse (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--traces",
        type=Path,
        metavar="DIR",
        help="directory holding azure-llm-2023/ and servegen-language/ (required)",
    )
    args = parser.parse_args()
    traces = check_traces(args.traces, args.models)

    for name in AZURE:
        runs = [parse_azure(traces, name) for _ in range(args.repeat)]
        seconds, reqs = statistics.median(s for s, _ in runs), runs[0][1]
        print(
            f"azure {name:<4}  {len(reqs):>7,} requests  parse {seconds * 1000:7.1f} ms "
            f"(median of {args.repeat})  {len(reqs) / seconds / 1e6:.2f} M rows/s"
        )
    conv = parse_azure(traces, "conv")[1]

    end = args.days * DAY
    generated, gen_seconds = 0, 0.0
    for model in args.models:
        with clients(traces, model) as files:
            rates = [rate for _, rate in servegen_rates(files)]
        total, mean = sum(rates) * WINDOW_S, statistics.mean(rates)
        print(
            f"{model:<8} {len(rates) * WINDOW_S / DAY:.0f} days: {total:,.0f} requests, "
            f"mean {mean:,.1f} req/s, peak {max(rates):,.1f} req/s (x{max(rates) / mean:.2f})"
        )
        with clients(traces, model) as files:
            windows = servegen_rates(files, end=end)
            expected = sum(rate * (min(w + WINDOW_S, end) - w) for w, rate in windows)
        tokens = EmpiricalTokens.from_requests(conv, seed=args.seed)
        with clients(traces, model) as files:
            start = time.perf_counter()
            count = sum(
                1 for _ in servegen_requests(files, model, seed=args.seed, tokens=tokens, end=end)
            )
            seconds = time.perf_counter() - start
        generated, gen_seconds = generated + count, gen_seconds + seconds
        print(
            f"{model:<8} first {args.days:g} days: generated {count:,} requests "
            f"(rates say {expected:,.0f}) in {seconds:,.1f} s, {count / seconds / 1e6:.2f} M/s"
        )
    print(
        f"all      first {args.days:g} days: {generated:,} requests in {gen_seconds:,.1f} s "
        f"({gen_seconds / max(generated, 1) * 1e6:.2f} us a request)"
    )


if __name__ == "__main__":
    main()
