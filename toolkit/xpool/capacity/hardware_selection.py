"""Hardware selection: every model's demand on each candidate pool, with servers, power, cost.

`xpool plan FILE --compare A,B,...` calls `compare`. Pure: takes the loaded platform and the
architectures and returns a `HardwareComparison` (the value types are in capacity/hardware.py).
Problems a user must fix come back as `CompareProblem`s, with a field path when one is at
fault (worded in capacity/hardware_problems.py), and the CLI turns them into exit 2. Formulas
are in docs/hardware-selection.md and in `hardware.FORMULAS` (printed with the output); the
tables and the report are report/hardware_report.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpool.capacity.hardware import (
    HOURS_PER_YEAR,
    Hardware,
    HardwareComparison,
    Option,
    Part,
    Placement,
    significant,
    supports_fp8,
)
from xpool.capacity.hardware_problems import (
    CompareError,
    CompareProblem,
    describe_constraint,
    fp8_exclusion,
    fp8_unsupported,
    name_problems,
    power_limit_unmet,
    psu_overdrawn,
    server_limit_unmet,
    short_of_declared_nodes,
    unfit_model,
    unmet_constraint,
)
from xpool.capacity.memory import GIB
from xpool.capacity.parallelism import smallest_fitting, valid_tp_degrees
from xpool.capacity.plan import ModelPlan, footprint_at, plan_version, plan_warnings, size_instance
from xpool.capacity.storage import allreduce_bytes_per_second, size_storage
from xpool.catalog.accelerators import PriceRange, accelerators
from xpool.catalog.architectures import Architecture
from xpool.catalog.servers import default_server_for, servers
from xpool.config.models import (
    CandidatePool,
    Costs,
    Model,
    PlacementConstraint,
    Platform,
    Pool,
)

__all__ = ["CompareError", "CompareProblem", "compare", "resolve_hardware"]

MAX_CROSS_SERVER_TP = 64


def compare(
    platform: Platform, archs: dict[str, Architecture], names: list[str]
) -> HardwareComparison:
    """Every model's peak demand on each pool of `names` alone, then the mixed plan (each model
    on the candidate where it costs least), checked against the purchase limits.

    Raise CompareError listing every candidate or constraint that cannot be met: each step
    reports all of its problems at once, and a later step runs only when the earlier ones
    found none (sizing needs the allowed candidates, the limits need the options).
    """
    spec = platform.spec
    _raise_if(
        name_problems(names, [p.name for p in spec.pools] + [c.name for c in spec.candidate_pools])
    )
    hardware = [h for n in names if (h := resolve_hardware(platform, n)) is not None]
    models = _priority_order(platform)
    allowed, excluded_by = _allowed_hardware(platform, models, hardware, names)
    fits, warnings = _size_all(platform, archs, models, allowed)
    options = [_candidate_option(platform, archs, hw, models, fits, excluded_by) for hw in hardware]
    assignments, mixed = _mixed_plan(platform, archs, hardware, models, allowed, fits)
    if mixed is not None:
        options.append(mixed)
    _raise_if(_limit_problems(platform, options))
    warnings += _purchase_warnings(options, fits)
    return HardwareComparison(
        hardware=hardware,
        options=options,
        assignments=assignments,
        recommended=_recommend(options),
        currency=spec.costs.currency,
        assumptions={
            "electricityPerKwh": spec.costs.electricity_per_kwh,
            "pue": spec.costs.pue,
            "utilization": spec.costs.utilization,
            "amortizationYears": spec.costs.amortization_years,
            "storage": spec.costs.storage.model_dump(by_alias=True),
        },
        warnings=list(dict.fromkeys(warnings)),
    )


def _raise_if(problems: list[CompareProblem]) -> None:
    if problems:
        raise CompareError(problems)


def _priority_order(platform: Platform) -> list[Model]:
    """Highest-priority tier first: the mixed plan places them first, on their cheapest."""
    rank = {t.name: -t.priority for t in platform.spec.tiers}
    return sorted(platform.spec.models, key=lambda m: rank.get(m.tier, 0))


# --- the steps of compare ---------------------------------------------------------------------


def _allowed_hardware(
    platform: Platform, models: list[Model], hardware: list[Hardware], names: list[str]
) -> tuple[dict[str, list[Hardware]], dict[tuple[str, str], str]]:
    """Step 1: which candidates each model may use, by the placement constraints and by the
    precisions its accelerators support; and why each (model, candidate) pair left out is.
    A model left nowhere is a problem."""
    allowed: dict[str, list[Hardware]] = {}
    excluded_by: dict[tuple[str, str], str] = {}
    problems: list[CompareProblem] = []
    for model in models:
        for hw in hardware:
            why = _why_excluded(platform, model, hw)
            if why is not None:
                excluded_by[(model.name, hw.name)] = why
        allowed[model.name] = [h for h in hardware if (model.name, h.name) not in excluded_by]
        if not allowed[model.name]:
            problems.append(_nowhere_problem(platform, model, hardware, names))
    _raise_if(problems)
    return allowed, excluded_by


def _why_excluded(platform: Platform, model: Model, hw: Hardware) -> str | None:
    """The placement constraint that keeps `model` off `hw`, else the FP8 precision `hw`
    cannot run, else None (allowed)."""
    blocking = _blocking_rule(platform, model, hw)
    if blocking is not None:
        return f"constraint {describe_constraint(blocking)}"
    fp8 = _fp8_fields(model)
    if fp8 and not supports_fp8(hw.accel):
        j, field = fp8[0]
        return fp8_exclusion(model.versions[j].version, field, hw)
    return None


def _nowhere_problem(
    platform: Platform, model: Model, hardware: list[Hardware], names: list[str]
) -> CompareProblem:
    """Why no compared pool is left for `model`: the first constraint that applies when the
    constraints leave none, else the FP8 precision none of the pools they permit supports."""
    permitted = [h for h in hardware if _blocking_rule(platform, model, h) is None]
    if not permitted:
        rules = platform.spec.constraints.placement
        i, rule = next((i, r) for i, r in enumerate(rules) if _applies(r, model))
        return unmet_constraint(platform, i, rule, model, names)
    j, field = _fp8_fields(model)[0]
    return fp8_unsupported(platform, model, j, field, permitted)


def _blocking_rule(platform: Platform, model: Model, hw: Hardware) -> PlacementConstraint | None:
    rules = platform.spec.constraints.placement
    return next((r for r in rules if _applies(r, model) and not _allows(r, hw)), None)


def _fp8_fields(model: Model) -> list[tuple[int, str]]:
    """(version index, field) of every FP8 precision the model's versions ask for."""
    return [
        (j, field)
        for j, v in enumerate(model.versions)
        for field, precision in (
            ("weightPrecision", v.weight_precision),
            ("kvPrecision", v.kv_precision),
        )
        if precision == "fp8"
    ]


def _size_all(
    platform: Platform,
    archs: dict[str, Architecture],
    models: list[Model],
    allowed: dict[str, list[Hardware]],
) -> tuple[dict[tuple[str, str], Placement], list[str]]:
    """Step 2: every allowed model sized on every candidate, keyed (model, candidate), and
    the sizing warnings. A candidate that cannot carry a model it is allowed is a problem:
    the comparison would silently leave that model out of it."""
    fits: dict[tuple[str, str], Placement] = {}
    warnings: list[str] = []
    failures: list[tuple[Hardware, Model, _Fit]] = []
    for model in models:
        for hw in allowed[model.name]:
            fit = _size_model(platform, model, archs[model.name], hw)
            if fit.placement is None:
                failures.append((hw, model, fit))
                continue
            fits[(model.name, hw.name)] = fit.placement
            if fit.warning:
                warnings.append(fit.warning)
    _raise_if(
        [
            unfit_model(
                hw,
                model,
                fit.problem,
                [
                    fits[(model.name, h.name)]
                    for h in allowed[model.name]
                    if (model.name, h.name) in fits
                ],
            )
            for hw, model, fit in failures
        ]
    )
    return fits, warnings


def _candidate_option(
    platform: Platform,
    archs: dict[str, Architecture],
    hw: Hardware,
    models: list[Model],
    fits: dict[tuple[str, str], Placement],
    excluded_by: dict[tuple[str, str], str],
) -> Option:
    """Step 3a: one candidate alone, with the models it may carry."""
    placed = [fits[(m.name, hw.name)] for m in models if (m.name, hw.name) in fits]
    excluded = {
        m.name: excluded_by[(m.name, hw.name)] for m in models if (m.name, hw.name) in excluded_by
    }
    parts = [_part(platform, archs, hw, placed)] if placed else []
    return _option(platform, hw.name, "candidate", parts, excluded)


def _mixed_plan(
    platform: Platform,
    archs: dict[str, Architecture],
    hardware: list[Hardware],
    models: list[Model],
    allowed: dict[str, list[Hardware]],
    fits: dict[tuple[str, str], Placement],
) -> tuple[dict[str, str], Option | None]:
    """Step 3b: each model, highest priority first, on the candidate where it adds the least
    cost given the models already placed (greedy). The assignments and the option, or none
    when fewer than two candidates are compared or the plan uses only one: then it is that
    candidate's option."""
    if len(hardware) < 2:
        return {}, None
    hw_of = {h.name: h for h in hardware}
    costs = platform.spec.costs
    assignments: dict[str, str] = {}
    by_hw: dict[str, list[Placement]] = {}
    for model in models:
        choices = [fits[(model.name, h.name)] for h in allowed[model.name]]
        chosen = min(
            choices,
            key=lambda p: _marginal_cost_key(p, hw_of[p.candidate], by_hw, costs),
        )
        assignments[model.name] = chosen.candidate
        by_hw.setdefault(chosen.candidate, []).append(chosen)
    if len(by_hw) < 2:
        return {}, None
    parts = [_part(platform, archs, h, by_hw[h.name]) for h in hardware if h.name in by_hw]
    return assignments, _option(platform, "mixed", "mixed", parts, {})


def _limit_problems(platform: Platform, options: list[Option]) -> list[CompareProblem]:
    """Step 4: maxPowerKw and maxServers. Each option over a limit records the violation (it
    cannot be recommended); a limit no complete option meets is a problem."""
    limits = platform.spec.constraints
    complete = [o for o in options if o.complete]
    for o in options:
        if limits.max_power_kw is not None and o.server_kw > limits.max_power_kw + 1e-9:
            o.violations.append(f"{o.server_kw:.1f} kW > maxPowerKw {limits.max_power_kw:g}")
        if limits.max_servers is not None and o.servers > limits.max_servers:
            o.violations.append(f"{o.servers} servers > maxServers {limits.max_servers}")
    problems = []
    if not complete:
        return problems
    if limits.max_power_kw is not None and all(
        o.server_kw > limits.max_power_kw + 1e-9 for o in complete
    ):
        low = min(complete, key=lambda o: o.server_kw)
        problems.append(power_limit_unmet(limits.max_power_kw, low))
    if limits.max_servers is not None and all(o.servers > limits.max_servers for o in complete):
        low = min(complete, key=lambda o: (o.servers, o.server_kw))
        problems.append(server_limit_unmet(limits.max_servers, low))
    return problems


def _purchase_warnings(options: list[Option], fits: dict[tuple[str, str], Placement]) -> list[str]:
    """Figures worth a look before buying: a declared pool smaller than the workload needs,
    a server that draws more than its supplies give with redundancy, the planner's warnings
    of each sized model, and each part's storage and network."""
    warnings: list[str] = []
    for option in options:
        if option.complete and option.kind == "candidate":
            warnings += [
                short_of_declared_nodes(part.hw, part.servers)
                for part in option.parts
                if part.hw.declared_nodes and part.hw.declared_nodes < part.servers
            ]
    used = {part.hw.name: part.hw for option in options for part in option.parts}
    warnings += [psu_overdrawn(hw) for hw in used.values() if hw.exceeds_redundant_psu]
    warnings += plan_warnings([p.plan for p in fits.values()])
    for option in options:
        for part in option.parts:
            warnings += part.storage.warnings
    return warnings


# --- resolving candidates -------------------------------------------------------------------


def _price(override: float | None, band: PriceRange | None, what: str) -> tuple[float | None, str]:
    if override is not None:
        return override, "spec.costs"
    if band is not None and band.low is not None and band.high is not None:
        return (
            band.low + band.high
        ) / 2, f"catalog midpoint of {band.low:g}-{band.high:g} ({band.as_of})"
    return None, f"unknown: no catalog price for {what}; set it in spec.costs"


def resolve_hardware(platform: Platform, name: str) -> Hardware | None:
    spec = platform.spec
    pool: Pool | None = next((p for p in spec.pools if p.name == name), None)
    kind = "pool"
    if pool is None:
        pool = next((c for c in spec.candidate_pools if c.name == name), None)
        kind = "candidate"
    if pool is None:
        return None
    accel = accelerators()[pool.accelerator]
    server_key = (
        pool.server if isinstance(pool, CandidatePool) else spec.costs.server_profiles.get(name)
    )
    server = servers()[server_key] if server_key else default_server_for(pool.accelerator)
    assert server is not None  # checked when the file was loaded
    costs = spec.costs
    accel_price, accel_src = _price(
        costs.accelerator_price.get(accel.key), accel.list_price_usd, accel.key
    )
    server_price, server_src = _price(
        costs.server_price.get(server.key), server.price_usd, server.key
    )
    return Hardware(
        name=name,
        kind=kind,
        pool=pool,
        accel=accel,
        server=server,
        per_node=pool.accelerators_per_node,
        declared_nodes=pool.nodes,
        board_w=costs.accelerator_power_w.get(accel.key, accel.typical_power_w),
        accel_price=accel_price,
        accel_price_source=accel_src,
        server_price=server_price,
        server_price_source=server_src,
    )


# --- constraints ----------------------------------------------------------------------------


def _applies(rule: PlacementConstraint, model: Model) -> bool:
    if rule.model is not None:
        return rule.model == model.name
    if rule.tier is not None:
        return rule.tier == model.tier
    return True


def _allows(rule: PlacementConstraint, hw: Hardware) -> bool:
    if rule.vendor is not None and hw.pool.vendor != rule.vendor:
        return False
    return rule.candidates is None or hw.name in rule.candidates


# --- sizing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    placement: Placement | None
    problem: str = ""  # why it does not fit (placement is None)
    needs_cross_server: bool = False
    warning: str = ""


def _size_model(platform: Platform, model: Model, arch: Architecture, hw: Hardware) -> _Fit:
    """The model's most demanding version on `hw`; every version must fit (rollouts)."""
    best: Placement | None = None
    warning = ""
    for version in model.versions:
        row = plan_version(platform, model, version, arch, hw.pool)
        cross = 1
        if not row.fits:
            row, cross, problem = _across_servers(platform, model, version, arch, hw, row)
            if row is None:
                return _Fit(None, problem)
            if (
                not hw.server.network.rdma
                and platform.spec.constraints.require_rdma_for_cross_server_tp
            ):
                return _Fit(
                    None,
                    f"{model.name} {version.version} needs TP {row.tp} > {hw.per_node} "
                    f"accelerators per server, i.e. TP across {cross} servers, which requires an "
                    f"RDMA network between servers; server profile '{hw.server.key}' has none",
                    needs_cross_server=True,
                )
            warning = (
                f"{hw.name}: {model.name} {version.version} needs TP {row.tp} across {cross} "
                f"servers ({'RDMA' if hw.server.network.rdma else 'no RDMA: TCP'}); xpool does "
                "not plan cross-server TP for deployment; measure throughput before buying"
            )
        tp = row.tp or 0
        p = Placement(
            model=model.name,
            version=row.version,
            tier=model.tier,
            candidate=hw.name,
            tp=tp,
            servers_per_instance=cross,
            instances_per_server=hw.per_node // tp if cross == 1 else 0,
            instances=row.instances_needed,
            qps_per_instance=row.qps_per_instance,
            qps_source=row.qps_source,
            peak_qps=model.demand.peak_qps,
            target_qps=row.target_qps,
            weight_bytes=row.footprint.weight_bytes,
            allreduce_bytes_per_s=allreduce_bytes_per_second(
                arch, tp, row.qps_per_instance, model.context.seq_len
            ),
            plan=row,
        )
        if best is None or (p.servers_per_instance, p.accelerators) > (
            best.servers_per_instance,
            best.accelerators,
        ):
            best = p
    assert best is not None
    return _Fit(best, warning=warning)


def _across_servers(
    platform: Platform, model, version, arch: Architecture, hw: Hardware, row: ModelPlan
) -> tuple[ModelPlan | None, int, str]:
    """Smallest TP beyond one server (whole servers per instance) that fits, if any."""
    accel = hw.accel
    at = footprint_at(platform, model, version, arch, hw.pool)

    degrees = [
        d
        for d in valid_tp_degrees(arch, MAX_CROSS_SERVER_TP)
        if d > hw.per_node and d % hw.per_node == 0
    ]
    fitting, _ = smallest_fitting(degrees, at)
    fp = row.footprint
    short = (
        f"{model.name} {version.version} does not fit: at TP {fp.tp} it needs "
        f"{fp.bytes_per_accelerator / GIB:.1f} GiB per accelerator of "
        f"{fp.budget_per_accelerator / GIB:.1f} GiB"
    )
    if fitting is None:
        why = (
            f"; no TP up to {MAX_CROSS_SERVER_TP} that divides its {arch.num_heads} heads fits "
            "either"
            if degrees
            else f"; TP beyond {hw.per_node} must divide its {arch.num_heads} attention heads, "
            "and none does"
        )
        return None, 0, short + why
    sized = size_instance(platform, model, version, arch, hw.pool, accel, fitting, fits=True)
    # size_instance computes per-node figures for TP within a node; the instance count is what we use.
    return sized, fitting.tp // hw.per_node, short


def _pack(placements: list[Placement], per_node: int) -> list[list[tuple[Placement, int]]]:
    """First-fit decreasing: each instance's TP accelerators on one server; an instance whose
    TP spans servers takes whole servers. Returns per server the (placement, instances) on it.
    Optimal when TP degrees and acceleratorsPerNode are powers of two."""
    whole: list[list[tuple[Placement, int]]] = []
    items: list[tuple[int, Placement]] = []
    for p in placements:
        if p.cross_server:
            whole.extend([[(p, 1)]] * (p.instances * p.servers_per_instance))
        else:
            items.extend((p.tp, p) for _ in range(p.instances))
    items.sort(key=lambda x: -x[0])
    bins: list[tuple[int, dict[str, tuple[Placement, int]]]] = []
    for size, p in items:
        for i, (free, content) in enumerate(bins):
            if free >= size:
                placed, n = content.get(p.model, (p, 0))
                content[p.model] = (placed, n + 1)
                bins[i] = (free - size, content)
                break
        else:
            bins.append((per_node - size, {p.model: (p, 1)}))
    return whole + [list(content.values()) for _, content in bins]


def _part(
    platform: Platform, archs: dict[str, Architecture], hw: Hardware, placements: list[Placement]
) -> Part:
    layout = _pack(placements, hw.per_node)
    storage = size_storage(platform, archs, hw, placements, layout)
    return Part(hw=hw, placements=placements, servers=len(layout), storage=storage)


def _option(platform: Platform, name: str, kind: str, parts: list[Part], excluded) -> Option:
    costs = platform.spec.costs
    placed = {p.model for part in parts for p in part.placements}
    return Option(
        name=name,
        kind=kind,
        parts=parts,
        excluded=excluded,
        peak_qps=sum(m.demand.peak_qps for m in platform.spec.models if m.name in placed),
        energy_price=costs.electricity_per_kwh,
        pue=costs.pue,
        utilization=costs.utilization,
        amortization_years=costs.amortization_years,
    )


def _marginal_cost_key(
    p: Placement, hw: Hardware, assigned: dict[str, list[Placement]], costs: Costs
) -> tuple:
    """`MIXED_PLAN_ORDER` as a sort key: what putting `p` on `hw` adds to the cost per hour at
    peak, given the models already assigned there (whole servers; an owned pool's servers
    cost only their energy), then `p`'s share of the cost of `hw`'s servers, then the power
    and servers it adds, an owned pool before a purchase, the candidate's name. Unknown
    prices rank after known ones and compare on power instead."""
    before = assigned.get(hw.name, [])
    n_before = len(_pack(before, hw.per_node))
    n_after = len(_pack([*before, p], hw.per_node))
    cost_before = _cost_per_hour(hw, n_before, costs)
    cost_after = _cost_per_hour(hw, n_after, costs)
    unknown = cost_before is None or cost_after is None
    if unknown:
        added, per_server = (n_after - n_before) * hw.server_kw, hw.server_kw
    else:
        added, per_server = cost_after - cost_before, cost_after / n_after
    share = p.accelerators / hw.per_node * per_server
    return (
        unknown,
        significant(added),
        significant(share),
        significant((n_after - n_before) * hw.server_kw),
        n_after - n_before,
        not hw.owned,
        hw.name,
    )


def _cost_per_hour(hw: Hardware, servers: int, costs: Costs) -> float | None:
    """`servers` of `hw` per hour at peak: the purchased ones amortised, all of them powered.
    None when servers must be bought at an unknown price."""
    purchased = max(0, servers - hw.owned_servers)
    energy = servers * hw.server_kw * costs.pue * costs.electricity_per_kwh
    if purchased == 0:
        return energy
    unit = hw.server_capex
    if unit is None:
        return None
    return purchased * unit / (costs.amortization_years * HOURS_PER_YEAR) + energy


def _recommend(options: list[Option]) -> str | None:
    """The complete option within every limit that ranks first by `RANKING` (cost per 1,000
    requests at peak, then the stated tie order); None when no option qualifies."""
    ok = [o for o in options if o.complete and not o.violations]
    return min(ok, key=Option.ranking_key).name if ok else None
