"""Tables of a hardware comparison (shared by the CLI and the Markdown report), and the report.

The PNG chart needs matplotlib (`pip install 'xpool[report]'`); it is imported only when a
report is written, with the Agg backend, so nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xpool.capacity.compare import FORMULAS, Comparison, Option
from xpool.capacity.memory import GIB

Table = tuple[str, list[str], list[list[Any]]]


def _money(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.0%}"


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f}"


def _models(o: Option) -> str:
    placed = ",".join(p.model for p in o.placements) or "-"
    if o.excluded:
        placed += " (not: " + ",".join(o.excluded) + ")"
    return placed


def option_table(c: Comparison) -> Table:
    cur = c.currency
    headers = [
        "OPTION",
        "HARDWARE",
        "MODELS",
        "SERVERS",
        "ACCELERATORS",
        "HEADROOM",
        "BOARD kW",
        "SERVER kW",
        "MWh/YEAR",
        f"ENERGY {cur}/YEAR",
        f"CAPEX {cur}",
        f"{cur}/1K REQ",
        "LIMITS",
    ]
    rows = []
    for o in c.options:
        name = o.name + (" (recommended)" if o.name == c.recommended else "")
        rows.append(
            [
                name,
                o.label,
                _models(o),
                o.servers,
                o.accelerators,
                _pct(o.headroom),
                f"{o.board_kw:.1f}",
                f"{o.server_kw:.1f}",
                f"{o.energy_kwh_per_year / 1000:.1f}",
                _money(o.energy_cost_per_year),
                _money(o.capex),
                _money(o.cost_per_1k_requests, 4),
                "; ".join(o.violations) or ("ok" if o.complete else "partial"),
            ]
        )
    return (
        "Candidates: all models' peak demand on each (mixed: each model on its cheapest)",
        headers,
        rows,
    )


def model_table(c: Comparison) -> Table:
    headers = [
        "OPTION",
        "CANDIDATE",
        "MODEL",
        "VERSION",
        "TP",
        "INST/SERVER",
        "INSTANCES",
        "ACCELERATORS",
        "QPS/INST",
        "CAPACITY QPS",
        "TARGET QPS",
        "HEADROOM",
    ]
    rows = []
    for o in c.options:
        for p in o.placements:
            rows.append(
                [
                    o.name,
                    p.candidate,
                    p.model,
                    p.version,
                    p.tp if not p.cross_server else f"{p.tp} ({p.servers_per_instance} servers)",
                    p.instances_per_server or "-",
                    p.instances,
                    p.accelerators,
                    f"{p.qps_per_instance:.1f}{'' if p.qps_source == 'measured' else '*'}",
                    f"{p.capacity_qps:.1f}",
                    f"{p.target_qps:.1f}",
                    _pct(p.headroom),
                ]
            )
    return ("Models x candidates", headers, rows)


def storage_table(c: Comparison) -> Table:
    headers = [
        "OPTION",
        "CANDIDATE",
        "SERVER",
        "GiB/INSTANCE",
        "LOCAL GiB (ALL INST.)",
        "LOCAL GiB (FULLEST SERVER)",
        "NVMe GiB/SERVER",
        "STORE USABLE GiB",
        "STORE RAW GiB",
        "MAX TP ALL-REDUCE GB/s",
        "SCALE-OUT Gb/s/SERVER",
        "RDMA",
    ]
    rows = []
    for o in c.options:
        for part in o.parts:
            s = part.storage
            rows.append(
                [
                    o.name,
                    part.hw.name,
                    part.hw.server.key,
                    ",".join(f"{m}={_gib(b)}" for m, b in s.per_instance_bytes.items()),
                    _gib(s.local_bytes_total),
                    _gib(s.local_bytes_max_server),
                    _gib(s.nvme_bytes_per_server),
                    _gib(s.store_usable_bytes),
                    _gib(s.store_raw_bytes),
                    f"{s.max_allreduce_bytes_per_s / 1e9:.1f}",
                    f"{s.scale_out_gbps_per_server:g}",
                    "yes" if s.rdma else "no",
                ]
            )
    return ("Storage and network", headers, rows)


def hardware_table(c: Comparison) -> Table:
    cur = c.currency
    headers = [
        "CANDIDATE",
        "ACCELERATOR",
        "SERVER PROFILE",
        "PER SERVER",
        "BOARD W",
        "HOST W",
        "PSU W",
        f"ACC. PRICE {cur}",
        f"SERVER PRICE {cur}",
        "PRICE SOURCE",
    ]
    rows = [
        [
            h.name,
            h.accel.key,
            h.server.key,
            h.per_node,
            f"{h.board_w:g}",
            f"{h.server.host_power_w:g}",
            f"{h.server.power_supply_w:g}",
            _money(h.accel_price),
            _money(h.server_price),
            f"accelerator: {h.accel_price_source}; server: {h.server_price_source}",
        ]
        for h in c.hardware
    ]
    return ("Hardware and prices", headers, rows)


def tables(c: Comparison) -> list[Table]:
    return [hardware_table(c), model_table(c), option_table(c), storage_table(c)]


def formula_lines(c: Comparison) -> list[str]:
    a = c.assumptions
    s = a["storage"]
    lines = [f"{k} = {v}" for k, v in FORMULAS.items()]
    lines.append(
        f"assumptions: electricity {a['electricityPerKwh']:g} {c.currency}/kWh, PUE {a['pue']:g}, "
        f"utilization {a['utilization']:g}, amortization {a['amortizationYears']:g} years; "
        f"storage: model files +{s['modelFileAllowanceGib']:g} GiB, logs "
        f"{s['logsGibPerInstance']:g} GiB and cache {s['cacheGibPerInstance']:g} GiB per "
        f"instance, redundancy x{s['redundancyFactor']:g}"
    )
    return lines


def mixed_lines(c: Comparison) -> list[str]:
    if not c.assignments:
        return []
    return [f"mixed plan: {m} -> {cand}" for m, cand in c.assignments.items()]


def _md_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return ("-" if v is None else str(v)).replace("|", "\\|")

    out = [f"### {title}", "", "| " + " | ".join(headers) + " |"]
    out.append("|" + "---|" * len(headers))
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def write_report(c: Comparison, directory: Path, *, source: str, command: str) -> list[Path]:
    """Write report.md and servers-cost.png into `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / "servers-cost.png"
    _chart(c, png)
    parts = [
        "# Hardware selection report",
        "",
        f"Platform file: `{source}`  ",
        f"Command: `{command}`",
        "",
        f"Recommended: **{c.recommended or 'none meets every constraint'}** "
        "(complete options meeting every limit; lowest cost per 1,000 requests at peak).",
        "",
        "![servers and cost per option](servers-cost.png)",
        "",
    ]
    parts += [_md_table(*t) for t in tables(c)]
    if c.assignments:
        parts += ["### Mixed plan", ""] + [f"- {line}" for line in mixed_lines(c)] + [""]
    parts += ["### Formulas", "", "```", *formula_lines(c), "```", ""]
    parts.append("`*` QPS per instance estimated from the decode roofline (no measured figure).\n")
    if c.warnings:
        parts += ["### Warnings", ""] + [f"- {w}" for w in c.warnings] + [""]
    md = directory / "report.md"
    md.write_text("\n".join(parts), encoding="utf-8")
    return [md, png]


def _chart(c: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [o.name for o in c.options]
    servers = [o.servers for o in c.options]
    costs = [o.cost_per_1k_requests or 0.0 for o in c.options]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(names, servers, color="#4c72b0")
    ax1.set_title("Servers needed")
    ax1.set_ylabel("servers")
    ax2.bar(names, costs, color="#dd8452")
    ax2.set_title(f"Cost per 1,000 requests at peak ({c.currency})")
    for i, o in enumerate(c.options):
        if o.cost_per_1k_requests is None:
            ax2.annotate("no price", (i, 0), ha="center", va="bottom")
        if not o.complete:
            ax1.annotate("partial", (i, servers[i]), ha="center", va="bottom")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
