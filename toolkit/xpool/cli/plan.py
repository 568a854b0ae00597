"""`xpool plan FILE`: memory, TP, instances and nodes per model version and pool; tier fit."""

from __future__ import annotations

import click

from xpool.actions.plan import PlanOptions, compare_hardware, plan
from xpool.actions.runtime import Runtime
from xpool.capacity.hardware import HardwareComparison
from xpool.capacity.memory import GIB
from xpool.capacity.plan import CapacityPlan
from xpool.cli.output import emit_data, emit_table, output_option
from xpool.report.hardware_report import formula_lines, mixed_lines, tables


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def _print_tables(capacity: CapacityPlan) -> None:
    emit_table(
        "Model versions x pools (GiB; per acc. = per accelerator)",
        [
            "MODEL",
            "VERSION",
            "POOL",
            "TIER",
            "TP",
            "WEIGHTS",
            "KV/TOKEN KiB",
            "KV CTX",
            "ACT",
            "PER ACC.",
            "BUDGET",
            "KV TOKENS",
            "INST/NODE",
            "DECODE TOK/S",
            "QPS/INST",
            "INSTANCES",
            "NODES",
            "FITS",
        ],
        [
            [
                m.model,
                m.version,
                m.pool,
                m.tier,
                m.tp,
                _gib(m.footprint.weight_bytes),
                f"{m.footprint.kv_bytes_per_token / 1024:g}",
                _gib(m.footprint.kv_bytes_for_context),
                _gib(m.footprint.activation_bytes),
                _gib(m.footprint.bytes_per_accelerator),
                _gib(m.footprint.budget_per_accelerator),
                m.kv_token_capacity,
                m.instances_per_node,
                m.decode_tokens_per_second_bound,
                f"{m.qps_per_instance:.1f}{'' if m.qps_source == 'measured' else '*'}",
                m.instances_needed,
                m.nodes_needed,
                "yes" if m.fits else "NO",
            ]
            for m in capacity.models
        ],
    )
    emit_table(
        "Tiers x pools (accelerators; each model placed where its tier holds it, highest priority first)",
        [
            "TIER",
            "POOL",
            "SHARE",
            "DESERVED",
            "GUARANTEE",
            "NEEDED AT PEAK",
            "HOLDS PEAK",
            "MODELS",
        ],
        [
            [
                t.tier,
                t.pool,
                f"{t.share:g}",
                t.deserved_accelerators,
                t.guarantee_accelerators,
                t.needed_accelerators,
                "yes" if t.holds_peak else "NO",
                ",".join(t.models) or "-",
            ]
            for t in capacity.tiers
        ],
    )
    emit_table(
        "Pools",
        ["POOL", "VENDOR", "ACCELERATOR", "NODES", "ACCELERATORS", "NEEDED AT PEAK", "PEAK USE"],
        [
            [
                p.pool,
                p.vendor,
                p.accelerator,
                p.nodes,
                p.accelerators,
                p.needed_accelerators,
                f"{p.needed_accelerators / p.accelerators:.0%}",
            ]
            for p in capacity.pools
        ],
    )
    click.echo(
        "* estimated from the rooflines: decode, prefill and whole request (set perInstanceQps to a measured figure)"
    )


def _print_comparison(result: HardwareComparison, output: str) -> None:
    if output != "table":
        emit_data(result.as_dict(), output)
        return
    for title, headers, rows in tables(result):
        emit_table(title, headers, rows)
    for line in mixed_lines(result):
        click.echo(line)
    click.echo(f"recommended: {result.recommended or 'none meets every constraint'}")
    click.echo(
        "* estimated from the rooflines: decode, prefill and whole request (set perInstanceQps to a measured figure)"
    )
    click.echo("")
    click.echo("# Formulas")
    for line in formula_lines(result):
        click.echo(line)


@click.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option()
@click.option(
    "--compare",
    "compare_pools",
    metavar="POOL,POOL,...",
    help="Compare pools / candidatePools for the whole workload ('all' for every one): "
    "servers, power, energy, cost, storage.",
)
@click.option(
    "--report",
    "report",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="With --compare: write DIR/report.md and DIR/servers-cost.png.",
)
def plan_command(file: str, output: str, compare_pools: str | None, report: str | None) -> None:
    """Size every model version on every pool it may use, and check each tier's share.

    With --compare, size the whole workload on each named pool or candidate pool instead.
    """
    options = PlanOptions(file, compare_pools, report)
    options.validate()
    runtime = Runtime()
    if compare_pools is not None:
        _print_comparison(compare_hardware(options, runtime), output)
    elif output == "table":
        _print_tables(plan(options, runtime))
    else:
        emit_data(plan(options, runtime).as_dict(), output)
