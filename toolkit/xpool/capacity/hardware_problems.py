"""What hardware selection tells a user it cannot do, and what to change.

`compare` (capacity/hardware_selection.py) finds the problem; the wording lives here so that
every message names the field or flag at fault and a way out (the nearest pool the rule
allows, the candidate that does carry a model, the limit that would be met). A problem with
a field path is located in the platform file by the CLI; one without is about `--compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xpool.capacity.hardware import Hardware, Option, Placement, supports_fp8
from xpool.catalog.accelerators import accelerators
from xpool.config.models import Model, PlacementConstraint, Platform
from xpool.config.positions import PathElem


@dataclass(frozen=True)
class CompareProblem:
    path: tuple[PathElem, ...]  # empty: not a field of the file (e.g. the --compare flag)
    message: str


class CompareError(Exception):
    def __init__(self, problems: list[CompareProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.message for p in problems))


def name_problems(names: list[str], known: list[str]) -> list[CompareProblem]:
    """`--compare` names that are no declared pool, or one pool named twice."""
    unknown = [n for n in names if n not in known]
    if unknown:
        return [
            CompareProblem(
                (),
                f"--compare: unknown pool '{n}'; name pools from spec.pools or "
                f"spec.candidatePools (known: {', '.join(known) or 'none'})",
            )
            for n in unknown
        ]
    if len(set(names)) != len(names):
        return [CompareProblem((), "--compare: a pool is named twice")]
    return []


def describe_constraint(rule: PlacementConstraint) -> str:
    who = (
        f"model {rule.model}" if rule.model else f"tier {rule.tier}" if rule.tier else "all models"
    )
    what = []
    if rule.vendor:
        what.append(f"vendor {rule.vendor}")
    if rule.candidates is not None:
        what.append(f"candidates {','.join(rule.candidates)}")
    why = f" ({rule.reason})" if rule.reason else ""
    return f"{who}: {' and '.join(what)}{why}"


def unmet_constraint(
    platform: Platform, index: int, rule: PlacementConstraint, model: Model, names: list[str]
) -> CompareProblem:
    """Placement constraint `index` leaves `model` no compared pool."""
    return CompareProblem(
        ("spec", "constraints", "placement", index),
        f"constraint {describe_constraint(rule)} cannot be met for {model.name} by the compared "
        f"pools ({', '.join(names)}); nearest: {_nearest_allowed(platform, rule, names)}",
    )


def _nearest_allowed(platform: Platform, rule: PlacementConstraint, names: list[str]) -> str:
    """A declared but uncompared pool the rule allows, or what to declare."""
    spec = platform.spec
    for pool in [*spec.pools, *spec.candidate_pools]:
        if pool.name in names:
            continue
        if (rule.vendor is None or pool.vendor == rule.vendor) and (
            rule.candidates is None or pool.name in rule.candidates
        ):
            return f"add '{pool.name}' ({pool.accelerator}) to --compare"
    if rule.vendor:
        keys = [k for k, a in accelerators().items() if a.vendor == rule.vendor]
        return (
            f"declare a candidate pool with vendor: {rule.vendor} (catalog: {', '.join(keys)}) "
            "and add it to --compare"
        )
    return f"add one of {', '.join(rule.candidates or [])} to --compare"


def fp8_exclusion(version: str, field: str, hw: Hardware) -> str:
    """Why a candidate is left out for a model that asks for FP8 (`excludedModels`)."""
    return (
        f"{version} {field} fp8: {hw.accel.key} has no FP8 (catalog fp8DenseTflops: null); "
        "use bf16 or int8 there"
    )


def fp8_unsupported(
    platform: Platform, model: Model, version_index: int, field: str, hardware: list[Hardware]
) -> CompareProblem:
    """No compared pool the model may use has FP8, and a version asks for it."""
    i = next(i for i, m in enumerate(platform.spec.models) if m.name == model.name)
    version = model.versions[version_index].version
    pools = ", ".join(f"'{h.name}' ({h.accel.key})" for h in hardware)
    with_fp8 = [k for k, a in accelerators().items() if supports_fp8(a)]
    lower = "int8 or bf16" if field == "weightPrecision" else "bf16"
    return CompareProblem(
        ("spec", "models", i, "versions", version_index, field),
        f"{model.name} {version} {field} fp8: none of the pools it may use has FP8 ({pools}); "
        f"set {field} to {lower}, or compare a pool whose accelerator has FP8 "
        f"(catalog: {', '.join(with_fp8)})",
    )


def unfit_model(
    hw: Hardware, model: Model, why: str, alternatives: list[Placement]
) -> CompareProblem:
    """`model` does not fit on `hw` (`why`); `alternatives`: where it does fit."""
    if alternatives:
        alt = min(alternatives, key=lambda p: p.accelerators)
        nearest = (
            f"nearest feasible candidate for {model.name}: '{alt.candidate}' "
            f"(TP {alt.tp}, {alt.instances} instances); drop '{hw.name}' from --compare or "
            f"add a placement constraint for {model.name}"
        )
    else:
        nearest = (
            "no compared candidate carries it; use a lower weightPrecision, a smaller "
            f"context, or an accelerator with more memory ({_biggest_memory()})"
        )
    return CompareProblem((), f"candidate '{hw.name}': {why}; {nearest}")


def _biggest_memory() -> str:
    a = max(accelerators().values(), key=lambda a: a.memory_gib)
    return f"e.g. {a.key}, {a.memory_nominal}"


def short_of_declared_nodes(hw: Hardware, servers: int) -> str:
    """The whole workload needs more servers than a pool declares: for an owned pool the rest
    are purchases (charged in its capex); for a candidate the declared purchase is too small."""
    if hw.owned:
        return (
            f"{hw.name}: owns {hw.declared_nodes} server(s) but the whole workload needs "
            f"{servers}; the other {servers - hw.owned_servers} are charged as purchases"
        )
    return f"{hw.name}: declares {hw.declared_nodes} nodes but the whole workload needs {servers}"


def psu_overdrawn(hw: Hardware) -> str:
    """A full server draws more than its power supplies give with redundancy."""
    psu = hw.server.psu
    return (
        f"{hw.name}: a server draws about {hw.server_w:,.0f} W at full load ({hw.per_node} x "
        f"{hw.board_w:,.0f} W boards + {hw.server.host_power_w:,.0f} W host), more than the "
        f"{psu.redundant_capacity_w:,.0f} W that the supplies of server profile "
        f"'{hw.server.key}' give with redundancy ({psu.units} x {psu.rating_w:,.0f} W in "
        f"{psu.scheme}); it loses redundancy at full load: power-limit the accelerators "
        "(spec.costs.acceleratorPowerW) or choose a profile with larger supplies"
    )


def power_limit_unmet(max_power_kw: float, low: Option) -> CompareProblem:
    """No complete option stays within maxPowerKw; `low` draws the least."""
    return CompareProblem(
        ("spec", "constraints", "maxPowerKw"),
        f"maxPowerKw {max_power_kw:g} cannot be met: the lowest-power feasible "
        f"option is {_option_name(low)} at {low.server_kw:.1f} kW ({low.servers} server{'s' if low.servers != 1 else ''}); "
        f"raise maxPowerKw to {math.ceil(low.server_kw * 10) / 10:g} or reduce demand",
    )


def server_limit_unmet(max_servers: int, low: Option) -> CompareProblem:
    """No complete option stays within maxServers; `low` needs the fewest."""
    return CompareProblem(
        ("spec", "constraints", "maxServers"),
        f"maxServers {max_servers} cannot be met: the feasible option with the "
        f"fewest servers is {_option_name(low)} with {low.servers}; raise maxServers to "
        f"{low.servers} or reduce demand",
    )


def _option_name(o: Option) -> str:
    if o.kind == "mixed":
        return "the mixed plan (" + " + ".join(f"'{p.hw.name}'" for p in o.parts) + ")"
    return f"'{o.name}'"
