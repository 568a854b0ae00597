"""`xpool plan FILE`: memory, TP, instances and nodes per model version and pool; tier fit."""

from __future__ import annotations

import click

from xpool.capacity.memory import GIB
from xpool.capacity.plan import CapacityPlan
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.validate import load_and_plan


def _gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def _print_tables(plan: CapacityPlan) -> None:
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
            for m in plan.models
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
            for t in plan.tiers
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
            for p in plan.pools
        ],
    )
    click.echo("* estimated from the decode roofline (set perInstanceQps to a measured figure)")


@click.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option()
def plan_command(file: str, output: str) -> None:
    """Size every model version on every pool it may use, and check each tier's share."""
    _, plan = load_and_plan(file)
    for warning in plan.warnings:
        note(f"warning: {warning}")
    if output == "table":
        _print_tables(plan)
    else:
        emit_data(plan.as_dict(), output)
