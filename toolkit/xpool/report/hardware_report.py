"""Tables of a hardware comparison (shared by the CLI and the Markdown report), and the report.

The PNG chart needs matplotlib (`pip install 'xpool[report]'`); it is imported only when a
report is written, with the Agg backend, so nothing here needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xpool.capacity.hardware import (
    FORMULAS,
    MIXED_PLAN_ORDER,
    RANKING,
    Hardware,
    HardwareComparison,
    Option,
    Placement,
)
from xpool.capacity.memory import GIB

Table = tuple[str, list[str], list[list[Any]]]

OWNED = "owned: no purchase cost"


def _money(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.0%}"


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f}"


def _hardware(o: Option) -> str:
    """What an option buys, in one cell: the mixed plan's candidates, or the accelerator."""
    if o.kind == "mixed":
        return "+".join(p.hw.name for p in o.parts)
    return o.parts[0].hw.accel.key if o.parts else "-"


def _capex(o: Option) -> str:
    """The option's capex, saying when owned servers are in it at no purchase cost."""
    if o.owned_servers == 0:
        return _money(o.capex)
    return f"{_money(o.capex)} ({o.owned_servers} {OWNED})"


def _memory(p: Placement) -> str:
    """Per accelerator: what must fit / what may be used, GiB."""
    return f"{_gib(p.bytes_per_accelerator)}/{_gib(p.budget_per_accelerator)}"


def _psu(h: Hardware) -> str:
    psu = h.server.psu
    over = " EXCEEDED" if h.exceeds_redundant_psu else ""
    return f"{psu.units} x {psu.rating_w:,.0f} {psu.scheme}: {psu.redundant_capacity_w:,.0f}{over}"


def _price_source(h: Hardware) -> str:
    source = f"accelerator: {h.accel_price_source}; server: {h.server_price_source}"
    if h.owned:
        return f"{OWNED} ({h.owned_servers} server(s)); further servers: {source}"
    return source


def _models(o: Option) -> str:
    placed = ",".join(p.model for p in o.placements) or "-"
    if o.excluded:
        placed += " (not: " + ",".join(o.excluded) + ")"
    return placed


def option_table(c: HardwareComparison) -> Table:
    cur = c.currency
    headers = [
        "OPTION",
        "HARDWARE",
        "MODELS",
        "SERVERS",
        "PURCHASED",
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
                _hardware(o),
                _models(o),
                o.servers,
                o.purchased_servers,
                o.accelerators,
                _pct(o.headroom),
                f"{o.board_kw:.1f}",
                f"{o.server_kw:.1f}",
                f"{o.energy_kwh_per_year / 1000:.1f}",
                _money(o.energy_cost_per_year),
                _capex(o),
                _money(o.cost_per_1k_requests, 4),
                "; ".join(o.violations) or ("ok" if o.complete else "partial"),
            ]
        )
    return (
        "Candidates: all models' peak demand on each (mixed: each model on its cheapest)",
        headers,
        rows,
    )


def model_table(c: HardwareComparison) -> Table:
    headers = [
        "OPTION",
        "CANDIDATE",
        "MODEL",
        "VERSION",
        "TP",
        "INST/SERVER",
        "INSTANCES",
        "ACCELERATORS",
        "GiB/ACC. (BUDGET)",
        "KV/TOKEN KiB",
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
                    _memory(p),
                    f"{p.kv_bytes_per_token / 1024:g}",
                    f"{p.qps_per_instance:.1f}{'' if p.qps_source == 'measured' else '*'}",
                    f"{p.capacity_qps:.1f}",
                    f"{p.target_qps:.1f}",
                    _pct(p.headroom),
                ]
            )
    return ("Models x candidates", headers, rows)


def storage_table(c: HardwareComparison) -> Table:
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
        "STORAGE NICs Gb/s/SERVER",
        "COLD LOAD s",
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
                    f"{s.storage_gbps_per_server:g}",
                    ",".join(f"{m}={v:.1f}" for m, v in s.cold_load_seconds.items()),
                ]
            )
    return ("Storage and network", headers, rows)


def hardware_table(c: HardwareComparison) -> Table:
    cur = c.currency
    headers = [
        "CANDIDATE",
        "ACCELERATOR",
        "SERVER PROFILE",
        "PER SERVER",
        "BOARD W",
        "HOST W",
        "SERVER DRAW W",
        "PSU: REDUNDANT W",
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
            f"{h.server_w:,.0f}",
            _psu(h),
            _money(h.accel_price),
            _money(h.server_price),
            _price_source(h),
        ]
        for h in c.hardware
    ]
    return ("Hardware and prices", headers, rows)


def tables(c: HardwareComparison) -> list[Table]:
    return [hardware_table(c), model_table(c), option_table(c), storage_table(c)]


def formula_lines(c: HardwareComparison) -> list[str]:
    a = c.assumptions
    s = a["storage"]
    lines = [f"{k} = {v}" for k, v in FORMULAS.items()]
    lines += [f"ranking: {RANKING}", f"mixed plan: {MIXED_PLAN_ORDER}"]
    lines.append(
        f"assumptions: electricity {a['electricityPerKwh']:g} {c.currency}/kWh, PUE {a['pue']:g}, "
        f"utilization {a['utilization']:g}, amortization {a['amortizationYears']:g} years; "
        f"storage: model files +{s['modelFileAllowanceGib']:g} GiB, logs "
        f"{s['logsGibPerInstance']:g} GiB and cache {s['cacheGibPerInstance']:g} GiB per "
        f"instance, redundancy x{s['redundancyFactor']:g}"
    )
    return lines


def mixed_lines(c: HardwareComparison) -> list[str]:
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


def write_report(
    c: HardwareComparison, directory: Path, *, source: str, command: str
) -> list[Path]:
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
        f"Recommended: **{c.recommended or 'none meets every constraint'}**. Ranking: {RANKING}.",
        "",
        f"Pools of `spec.pools` are owned (**{OWNED}** for their servers, up to the pool's "
        "nodes; their energy still counts); `spec.candidatePools` are purchases. A server whose "
        "full-load draw exceeds what its power supplies give with redundancy is marked EXCEEDED "
        "and warned about.",
        "",
        "![servers and cost per option](servers-cost.png)",
        "",
    ]
    parts += [_md_table(*t) for t in tables(c)]
    if c.assignments:
        parts += ["### Mixed plan", ""] + [f"- {line}" for line in mixed_lines(c)] + [""]
    parts += ["### Formulas", "", "```", *formula_lines(c), "```", ""]
    parts.append(
        "`*` QPS per instance estimated from the rooflines: decode, prefill and whole request (no measured figure).\n"
    )
    if c.warnings:
        parts += ["### Warnings", ""] + [f"- {w}" for w in c.warnings] + [""]
    md = directory / "report.md"
    md.write_text("\n".join(parts), encoding="utf-8")
    return [md, png]


def _chart(c: HardwareComparison, path: Path) -> None:
    """Servers per option (owned ones stacked on purchased ones) and cost per 1,000 requests,
    side by side; partial options (some models left out) are labelled on both, since their
    figures cover less than the whole workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = [o.name + (" *" if o.name == c.recommended else "") for o in c.options]
    owned = [o.owned_servers for o in c.options]
    purchased = [o.purchased_servers for o in c.options]
    costs = [o.cost_per_1k_requests or 0.0 for o in c.options]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.4))
    ax1.bar(names, purchased, color="#4c72b0", label="purchased")
    ax1.bar(names, owned, bottom=purchased, color="#a0a0a0", label=OWNED)
    ax1.set_title("Servers needed")
    ax1.set_ylabel("servers")
    ax1.set_ylim(0, max([o.servers for o in c.options], default=1) * 1.35 + 0.5)
    ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.legend(loc="upper center", ncol=2, fontsize="small", frameon=False)
    ax2.bar(names, costs, color="#dd8452")
    ax2.set_title(f"Cost per 1,000 requests at peak ({c.currency})")
    ax2.set_ylim(0, max(costs, default=0.0) * 1.2 or 1.0)
    for i, o in enumerate(c.options):
        if o.cost_per_1k_requests is None:
            ax2.annotate("no price", (i, 0), ha="center", va="bottom")
        if not o.complete:
            ax1.annotate("partial", (i, o.servers), ha="center", va="bottom")
            ax2.annotate("partial", (i, costs[i]), ha="center", va="bottom")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    if c.recommended:
        fig.text(0.01, 0.01, "* recommended", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
