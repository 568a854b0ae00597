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
            "UTIL. HELD",
            "UTIL. OWNED",
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
                _pct(r.owned_utilisation),
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
    print_batches(comparison)
    pooled = comparison.result("pooled") or comparison.results[0]
    limits = ", ".join(
        f"{t} {_pct(pooled.tiers[t].attainable_share)}" for t in tiers if t in pooled.tiers
    )
    note(f"SLO attainable at all (prefill alone within slo.ttftMs): {limits}")
    for goal, met in comparison.goals().items():
        note(f"goal {goal}: {'-' if met is None else 'met' if met else 'NOT met'}")


def print_batches(comparison: PolicyComparison) -> None:
    """The backlog's goodput and time to complete, per policy that served one."""
    served = [r for r in comparison.results if r.batch is not None]
    if not served:
        return
    emit_table(
        "Batch backlog",
        ["POLICY", "COMPLETED", "REQUESTS/H", "TOKENS/H", "COMPLETION", "REQUEUED", "LOST ACC-H"],
        [
            [
                r.policy,
                f"{b.completed:,.0f} of {sum(j.job.requests for j in b.jobs):,}",
                _number(b.per_hour(b.completed)),
                _number(b.per_hour(b.tokens)),
                _hours(b.completion_seconds),
                f"{b.requeued:,.0f}",
                f"{b.lost_accelerator_seconds / 3600:,.1f}",
            ]
            for r in comparison.results
            if (b := r.batch) is not None
        ],
    )


def _number(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _hours(seconds: float | None) -> str:
    return "unfinished" if seconds is None else f"{seconds / 3600:.2f} h"


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--trace",
    "traces",
    multiple=True,
    required=True,
    help="KIND:PATH[=MODEL][*SCALE][@SHIFT], KIND azure|servegen|csv|jsonl; repeatable.",
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
@click.option("--tick", default="5s", show_default=True, help="Fluid mode: time step.")
@click.option(
    "--poisson",
    is_flag=True,
    help="Fluid mode: seeded Poisson arrivals per tick at the trace's rates.",
)
@click.option(
    "--smooth", is_flag=True, help="Fluid mode: rate x tick arrivals, not the trace's own."
)
@click.option(
    "--fluid/--requests",
    "fluid",
    default=None,
    help="Service mode [default: requests, fluid for ServeGen].",
)
@click.option(
    "--batch",
    "batches",
    multiple=True,
    help="MODEL=N[:IN_TOKENS:OUT_TOKENS][@START]: a backlog of N requests served in idle "
    "slots at the lowest priority (fluid mode); repeatable.",
)
@click.option(
    "--batch-trace",
    "batch_traces",
    multiple=True,
    help="KIND:PATH[=MODEL][@SHIFT], KIND csv|jsonl|azure: requests submitted as a batch "
    "at their timestamps; repeatable.",
)
@click.option(
    "--batch-reserve",
    type=int,
    default=1,
    show_default=True,
    help="Slots per instance a batch leaves to interactive requests.",
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
    tick: str,
    poisson: bool,
    smooth: bool,
    fluid: bool | None,
    batches: tuple[str, ...],
    batch_traces: tuple[str, ...],
    batch_reserve: int,
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
        tick=tick,
        poisson=poisson,
        smooth=smooth,
        fluid=fluid,
        report_dir=report_dir,
        batches=batches,
        batch_traces=batch_traces,
        batch_reserve=batch_reserve,
    )
    options.validate()
    comparison = simulate(options, Runtime())
    if output == "json":
        emit_data(comparison.as_dict(), "json")
    else:
        print_table(comparison)
