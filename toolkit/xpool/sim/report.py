"""Plots and a markdown report of a comparison, returned as objects: the CLI writes them.

matplotlib is imported inside the functions (it is slow to import and only reports need it),
and figures are built with `matplotlib.figure.Figure`, without pyplot's global state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xpool.sim.policy_comparison import PolicyComparison
from xpool.sim.results import BINS, bin_upper

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HOUR = 3600.0


def figures(comparison: PolicyComparison) -> dict[str, Figure]:
    """`capacity` (demand vs held accelerators per tier, per policy), `utilisation`
    (busy / held over time) and `ttft` (TTFT CDF per tier and policy)."""
    from matplotlib.figure import Figure

    simulated = [r for r in comparison.results if r.samples]
    out: dict[str, Figure] = {}
    if simulated:
        fig = Figure(figsize=(10, 2.6 * len(simulated)), layout="constrained")
        axes = fig.subplots(len(simulated), 1, squeeze=False, sharex=True)
        for ax, result in zip(axes[:, 0], simulated, strict=True):
            tiers = sorted({t for s in result.samples for t in s.held})
            hours = [s.t / HOUR for s in result.samples]
            for tier in tiers:
                (line,) = ax.plot(
                    hours, [s.held.get(tier, 0.0) for s in result.samples], label=f"{tier} held"
                )
                ax.plot(
                    hours,
                    [s.demand.get(tier, 0.0) for s in result.samples],
                    color=line.get_color(),
                    alpha=0.45,
                    linewidth=0.8,
                    label=f"{tier} load",
                )
            ax.set_title(f"{result.policy}: load vs capacity per tier")
            ax.set_ylabel("accelerators")
            ax.legend(loc="upper right", fontsize="small", ncol=2)
        axes[-1, 0].set_xlabel("hours")
        out["capacity"] = fig

        fig = Figure(figsize=(10, 3.2), layout="constrained")
        ax = fig.subplots()
        for result in simulated:
            points = [(s.t / HOUR, s.utilisation) for s in result.samples if s.utilisation]
            ax.plot([p[0] for p in points], [p[1] for p in points], label=result.policy)
        ax.set_ylim(0, 1)
        ax.set_xlabel("hours")
        ax.set_ylabel("busy / held accelerator-time")
        ax.set_title("Utilisation")
        ax.legend(fontsize="small")
        out["utilisation"] = fig

        fig = Figure(figsize=(10, 3.6), layout="constrained")
        ax = fig.subplots()
        edges = [bin_upper(i) for i in range(BINS)]
        for result in simulated:
            for tier, stats in sorted(result.tiers.items()):
                total = sum(stats.ttft)
                if not total:
                    continue
                seen, cdf = 0.0, []
                for n in stats.ttft:
                    seen += n
                    cdf.append(seen / total)
                ax.step(edges, cdf, where="post", label=f"{result.policy} {tier}")
        ax.set_xscale("log")
        ax.set_xlabel("TTFT (s)")
        ax.set_ylabel("share of started requests")
        ax.set_title("TTFT CDF")
        ax.legend(fontsize="small", ncol=2)
        out["ttft"] = fig
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _batch_lines(comparison: PolicyComparison) -> list[str]:
    served = [r for r in comparison.results if r.batch is not None]
    if not served:
        return []
    lines = [
        "",
        "## Batch backlog",
        "",
        "| policy | completed | requests/h | tokens/h | time to complete | re-queued |",
        "|---|---|---|---|---|---|",
    ]
    for r in served:
        b = r.batch
        assert b is not None
        req_h, tok_h, done = b.per_hour(b.completed), b.per_hour(b.tokens), b.completion_seconds
        lines.append(
            f"| {r.policy} | {b.completed:,.0f} | {'-' if req_h is None else f'{req_h:,.0f}'} | "
            f"{'-' if tok_h is None else f'{tok_h:,.0f}'} | "
            f"{'unfinished' if done is None else f'{done / HOUR:.2f} h'} | {b.requeued:,.0f} |"
        )
    return lines


def markdown(comparison: PolicyComparison, plots: list[str]) -> str:
    """report.md: the comparison table, the goals, and the plots by file name."""
    tiers = sorted({t for r in comparison.results for t in r.tiers})
    lines = [
        "# Simulation report",
        "",
        f"Service mode: {comparison.mode}. Oracle accelerator-hours: "
        + (f"{comparison.oracle_hours:.2f}." if comparison.oracle_hours else "-."),
        "",
        "| policy | accelerator-hours | vs oracle | util. held | util. owned | "
        + " | ".join(f"{t} SLO" for t in tiers)
        + " | shed | scale up/down | preemptions |",
        "|" + "---|" * (8 + len(tiers)),
    ]
    for r in comparison.results:
        ratio = (
            f"{r.accelerator_hours / comparison.oracle_hours:.2f}x"
            if comparison.oracle_hours
            else "-"
        )
        slo = [
            _pct(r.tiers[t].attainment) if t in r.tiers and r.policy != "oracle" else "-"
            for t in tiers
        ]
        lines.append(
            f"| {r.policy} | {r.accelerator_hours:.2f} | {ratio} | {_pct(r.utilisation)} | "
            f"{_pct(r.owned_utilisation)} | "
            + " | ".join(slo)
            + f" | {r.shed:.0f} | {r.scale_ups}/{r.scale_downs} | {r.preemptions} |"
        )
    lines += _batch_lines(comparison)
    lines += ["", "## Goals (reported, not asserted)", ""]
    for goal, met in comparison.goals().items():
        lines.append(f"- {goal}: {'-' if met is None else 'met' if met else 'NOT met'}")
    lines.append("")
    for name in plots:
        lines += [f"![{name}]({name}.png)", ""]
    return "\n".join(lines)
