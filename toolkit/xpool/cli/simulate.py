"""`xpool simulate FILE --trace KIND:PATH[=MODEL][*SCALE]`: replay traces against the policies.

The trace kinds and their `=MODEL` / `*SCALE` suffixes are described in
actions/simulate_traces.py and in docs/simulation.md.
"""

from __future__ import annotations

import click

from xpool.actions.runtime import Runtime
from xpool.actions.simulate import SimulateOptions, simulate
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.sim.baselines import POLICIES
from xpool.sim.engine import UTILISATION_SIGNALS
from xpool.sim.policy_comparison import PolicyComparison


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def print_table(comparison: PolicyComparison) -> None:
    tiers = sorted({t for r in comparison.results for t in r.tiers})
    emit_table(
        f"Policies ({comparison.mode} mode)",
        [
            "POLICY",
            "ACC-HOURS",
            "VS ORACLE",
            "UTILISATION",
            "POOL UTIL",
            *(f"{t} SLO" for t in tiers),
            "SHED",
            "TOO LONG",
            "REQUEUED",
            "SCALE UP/DOWN",
            "PREEMPTIONS",
            "WALL S",
        ],
        [
            [
                r.policy,
                f"{r.accelerator_hours:.2f}",
                (
                    f"{r.accelerator_hours / comparison.oracle_hours:.2f}x"
                    if comparison.oracle_hours
                    else "-"
                ),
                _pct(r.utilisation),
                _pct(r.pool_utilisation),
                *(
                    _pct(r.tiers[t].attainment) if t in r.tiers and r.policy != "oracle" else "-"
                    for t in tiers
                ),
                f"{r.shed:.0f}",
                f"{sum(t.too_long for t in r.tiers.values()):.0f}",
                f"{sum(t.requeued for t in r.tiers.values()):.0f}",
                f"{r.scale_ups}/{r.scale_downs}",
                r.preemptions,
                f"{r.wall_seconds:.2f}",
            ]
            for r in comparison.results
        ],
    )
    pooled = comparison.result("pooled") or comparison.results[0]
    limits = ", ".join(
        f"{t} {_pct(pooled.tiers[t].attainable_share)}" for t in tiers if t in pooled.tiers
    )
    note(f"SLO attainable at all (prefill alone within slo.ttftMs): {limits}")
    for goal, met in comparison.goals().items():
        note(f"goal {goal}: {'-' if met is None else 'met' if met else 'NOT met'}")


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--trace",
    "traces",
    multiple=True,
    required=True,
    help="KIND:PATH[=MODEL][*SCALE], KIND azure|servegen|csv|jsonl; repeatable.",
)
@click.option(
    "--policies",
    default=",".join(POLICIES),
    show_default=True,
    help="Comma-separated policies to compare.",
)
@click.option("--start", default="0s", show_default=True, help="Skip this much of the traces.")
@click.option("--duration", default=None, help="Simulate this long [default: the traces].")
@click.option("--speedup", type=float, default=1.0, show_default=True, help="Replay faster.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--interval", default="15s", show_default=True, help="Time between passes.")
@click.option(
    "--cold-start",
    default="auto",
    show_default=True,
    help="Launch to ready; auto: engine start + weights over the pool's storage bandwidth.",
)
@click.option("--window", default="60s", show_default=True, help="QPS rate window.")
@click.option("--lag", default="15s", show_default=True, help="Scrape lag of the QPS.")
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=2,
    show_default=True,
    help="Client retries of a 429.",
)
@click.option("--retry-after", default="1s", show_default=True, help="Gateway's Retry-After.")
@click.option(
    "--utilisation",
    type=click.Choice(UTILISATION_SIGNALS),
    default="pool",
    show_default=True,
    help="Utilisation the policy sees: the pool's exporters, the model's slots, or none.",
)
@click.option("--tick", default="5s", show_default=True, help="Fluid mode: time step.")
@click.option("--poisson", is_flag=True, help="Fluid mode: seeded Poisson arrivals per tick.")
@click.option(
    "--smooth", is_flag=True, help="Fluid mode: rate x tick arrivals, not the trace's variance."
)
@click.option(
    "--fluid/--requests",
    "fluid",
    default=None,
    help="Service mode [default: requests, fluid for ServeGen].",
)
@output_option(choices=("table", "json"))
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write report.md and PNG plots into this directory.",
)
def simulate_command(
    file: str,
    traces: tuple[str, ...],
    policies: str,
    start: str,
    duration: str | None,
    speedup: float,
    seed: int,
    interval: str,
    cold_start: str,
    window: str,
    lag: str,
    retries: int,
    retry_after: str,
    utilisation: str,
    tick: str,
    poisson: bool,
    smooth: bool,
    fluid: bool | None,
    output: str,
    report_dir: str | None,
) -> None:
    """Replay request traces against static, HPA-like, siloed, pooled (xpool) and oracle
    policies."""
    options = SimulateOptions(
        file,
        traces,
        policies=policies,
        start=start,
        duration=duration,
        speedup=speedup,
        seed=seed,
        interval=interval,
        cold_start=cold_start,
        window=window,
        lag=lag,
        retries=retries,
        retry_after=retry_after,
        utilisation=utilisation,
        tick=tick,
        poisson=poisson,
        smooth=smooth,
        fluid=fluid,
        report_dir=report_dir,
    )
    options.validate()
    comparison = simulate(options, Runtime())
    if output == "json":
        emit_data(comparison.as_dict(), "json")
    else:
        print_table(comparison)
