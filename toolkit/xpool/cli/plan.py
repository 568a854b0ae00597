"""`xpool plan FILE`: memory, TP, instances and nodes per model version and pool; tier fit."""

from __future__ import annotations

from pathlib import Path

import click

from xpool.capacity.memory import GIB
from xpool.capacity.plan import CapacityPlan
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.errors import InputError, Problem
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


def _compare(file: str, names: str, output: str, report: str | None) -> None:
    from xpool.capacity.compare import CompareError, compare
    from xpool.config.loader import load_platform
    from xpool.report.compare import formula_lines, mixed_lines, tables, write_report

    loaded = load_platform(file)
    spec = loaded.platform.spec
    if names.strip() == "all":
        wanted = [p.name for p in spec.pools] + [c.name for c in spec.candidate_pools]
    else:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise InputError("--compare needs pool names: POOL,POOL,... or 'all'")
    try:
        result = compare(loaded.platform, loaded.architectures, wanted)
    except CompareError as exc:
        raise InputError(
            [
                loaded.problem(p.path, p.message) if p.path else Problem(file, "", p.message)
                for p in exc.problems
            ]
        ) from None
    for warning in result.warnings:
        note(f"warning: {warning}")
    if report is not None:
        command = f"xpool plan {file} --compare {names} --report {report}"
        try:
            written = write_report(result, Path(report), source=file, command=command)
        except ImportError:
            raise InputError("--report needs matplotlib: pip install 'xpool[report]'") from None
        except OSError as exc:
            raise InputError(f"--report {report}: cannot write: {exc}") from None
        note("wrote " + ", ".join(str(w) for w in written))
    if output != "table":
        emit_data(result.as_dict(), output)
        return
    for title, headers, rows in tables(result):
        emit_table(title, headers, rows)
    for line in mixed_lines(result):
        click.echo(line)
    click.echo(f"recommended: {result.recommended or 'none meets every constraint'}")
    click.echo("* estimated from the decode roofline (set perInstanceQps to a measured figure)")
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
    if report is not None and compare_pools is None:
        raise click.UsageError("--report needs --compare POOL,POOL,...")
    if compare_pools is not None:
        _compare(file, compare_pools, output, report)
        return
    _, plan = load_and_plan(file)
    for warning in plan.warnings:
        note(f"warning: {warning}")
    if output == "table":
        _print_tables(plan)
    else:
        emit_data(plan.as_dict(), output)
