"""Hardware selection: every model's demand on each candidate pool, with servers, power, cost.

`xpool plan FILE --compare A,B,...` calls `compare`. Pure: takes the loaded platform and the
architectures, returns data or raises nothing itself; problems a user must fix come back as
`CompareProblem`s (a field path when one is at fault) and the CLI turns them into exit 2.
Formulas are in docs/hardware-selection.md and in `FORMULAS` below (printed with the output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xpool.capacity.memory import GIB
from xpool.capacity.parallelism import smallest_fitting, valid_tp_degrees
from xpool.capacity.plan import ModelPlan, footprint_at, plan_version, plan_warnings, size_instance
from xpool.capacity.storage import StorageNetwork, allreduce_bytes_per_second, size_storage
from xpool.catalog.accelerators import Accelerator, PriceRange, accelerators
from xpool.catalog.architectures import Architecture
from xpool.catalog.servers import ServerProfile, default_server_for, servers
from xpool.config.models import (
    CandidatePool,
    Model,
    PlacementConstraint,
    Platform,
    Pool,
)
from xpool.config.positions import PathElem

HOURS_PER_YEAR = 8760
MAX_CROSS_SERVER_TP = 64

FORMULAS = {
    "targetQps": "peakQps x (1 + headroom)",
    "instances": "max(instances.min, ceil(targetQps / qpsPerInstance))",
    "servers": "instances (TP accelerators each) packed first-fit-decreasing into servers of "
    "acceleratorsPerNode; for one model: ceil(instances / floor(acceleratorsPerNode / TP))",
    "headroom": "instances x qpsPerInstance / targetQps - 1 (the option's figure: the smallest)",
    "boardKw": "servers x acceleratorsPerNode x boardPowerW / 1000",
    "serverKw": "servers x (acceleratorsPerNode x boardPowerW + hostPowerW) / 1000",
    "energyKwhPerYear": "serverKw x utilization x 8760 h x PUE",
    "capex": "servers x (serverPrice + acceleratorsPerNode x acceleratorPrice)",
    "costPer1kRequests": "(capex / (amortizationYears x 8760 h) + serverKw x PUE x pricePerKwh) "
    "/ (sum of peakQps x 3600) x 1000  [per hour at peak, full power]",
    "perInstanceBytes": "weights + modelFileAllowance + logsPerInstance + cachePerInstance",
    "localBytesPerServer": "sum over model versions on the server (weights + modelFileAllowance) "
    "+ instances on it x (logs + cache)",
    "storeUsableBytes": "sum over model versions (weights + modelFileAllowance) + instances x logs",
    "storeRawBytes": "storeUsableBytes x redundancyFactor",
    "tpAllReduceBytesPerSecond": "qpsPerInstance x seqLen x layers x 2 all-reduces x "
    "2(TP-1)/TP x hidden x 2 B  (per rank; ring all-reduce of 16-bit activations)",
    "coldLoadSeconds": "weights / scale-out bandwidth of one server",
}


@dataclass(frozen=True)
class CompareProblem:
    path: tuple[PathElem, ...]  # empty: not a field of the file (e.g. the --compare flag)
    message: str


class CompareError(Exception):
    def __init__(self, problems: list[CompareProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.message for p in problems))


@dataclass(frozen=True)
class Hardware:
    """A pool or candidate pool with its server profile, prices and power resolved."""

    name: str
    kind: str  # "pool" | "candidate"
    pool: Pool
    accel: Accelerator
    server: ServerProfile
    per_node: int
    declared_nodes: int | None
    board_w: float
    accel_price: float | None
    accel_price_source: str
    server_price: float | None
    server_price_source: str

    @property
    def server_kw(self) -> float:
        return (self.per_node * self.board_w + self.server.host_power_w) / 1000

    @property
    def server_capex(self) -> float | None:
        if self.accel_price is None or self.server_price is None:
            return None
        return self.server_price + self.per_node * self.accel_price

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": self.pool.vendor,
            "accelerator": self.accel.key,
            "serverProfile": self.server.key,
            "acceleratorsPerNode": self.per_node,
            "declaredNodes": self.declared_nodes,
            "boardPowerW": self.board_w,
            "hostPowerW": self.server.host_power_w,
            "serverPowerSupplyW": self.server.power_supply_w,
            "acceleratorPrice": self.accel_price,
            "acceleratorPriceSource": self.accel_price_source,
            "serverPrice": self.server_price,
            "serverPriceSource": self.server_price_source,
            "rdma": self.server.network.rdma,
        }


@dataclass(frozen=True)
class Placement:
    """One model (its most demanding version) sized on one candidate."""

    model: str
    version: str
    tier: str
    candidate: str
    tp: int
    servers_per_instance: int  # > 1 only when TP spans servers
    instances_per_server: int  # 0 when TP spans servers
    instances: int
    qps_per_instance: float
    qps_source: str
    peak_qps: float
    target_qps: float
    weight_bytes: int
    allreduce_bytes_per_s: float
    plan: ModelPlan

    @property
    def accelerators(self) -> int:
        return self.instances * self.tp

    @property
    def capacity_qps(self) -> float:
        return self.instances * self.qps_per_instance

    @property
    def headroom(self) -> float:
        return self.capacity_qps / self.target_qps - 1 if self.target_qps else math.inf

    @property
    def cross_server(self) -> bool:
        return self.servers_per_instance > 1

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "tier": self.tier,
            "candidate": self.candidate,
            "tp": self.tp,
            "crossServerTp": self.cross_server,
            "serversPerInstance": self.servers_per_instance,
            "instancesPerServer": self.instances_per_server,
            "instances": self.instances,
            "accelerators": self.accelerators,
            "qpsPerInstance": round(self.qps_per_instance, 3),
            "qpsSource": self.qps_source,
            "peakQps": self.peak_qps,
            "targetQps": round(self.target_qps, 3),
            "capacityQps": round(self.capacity_qps, 3),
            "headroom": _r(self.headroom, 4),
            "weightBytes": self.weight_bytes,
            "tpAllReduceBytesPerSecond": round(self.allreduce_bytes_per_s),
        }


@dataclass(frozen=True)
class Part:
    """Some models' demand on one candidate, packed into whole servers."""

    hw: Hardware
    placements: list[Placement]
    servers: int
    storage: StorageNetwork

    @property
    def accelerators(self) -> int:
        return self.servers * self.hw.per_node

    @property
    def accelerators_used(self) -> int:
        return sum(p.accelerators for p in self.placements)

    @property
    def board_kw(self) -> float:
        return self.accelerators * self.hw.board_w / 1000

    @property
    def server_kw(self) -> float:
        return self.servers * self.hw.server_kw

    @property
    def capex(self) -> float | None:
        unit = self.hw.server_capex
        return None if unit is None else self.servers * unit

    def as_dict(self) -> dict:
        return {
            "candidate": self.hw.name,
            "servers": self.servers,
            "accelerators": self.accelerators,
            "acceleratorsUsed": self.accelerators_used,
            "boardKw": round(self.board_kw, 3),
            "serverKw": round(self.server_kw, 3),
            "capex": _r(self.capex, 2),
            "models": [p.as_dict() for p in self.placements],
            "storage": self.storage.as_dict(),
        }


@dataclass(frozen=True)
class Option:
    """A way to buy for the workload: one candidate alone, or the mixed plan."""

    name: str
    kind: str  # "candidate" | "mixed"
    parts: list[Part]
    excluded: dict[str, str]  # model -> why it is not placed here
    peak_qps: float
    energy_price: float
    pue: float
    utilization: float
    amortization_years: float
    violations: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.excluded

    @property
    def placements(self) -> list[Placement]:
        return [p for part in self.parts for p in part.placements]

    @property
    def servers(self) -> int:
        return sum(p.servers for p in self.parts)

    @property
    def accelerators(self) -> int:
        return sum(p.accelerators for p in self.parts)

    @property
    def board_kw(self) -> float:
        return sum(p.board_kw for p in self.parts)

    @property
    def server_kw(self) -> float:
        return sum(p.server_kw for p in self.parts)

    @property
    def energy_kwh_per_year(self) -> float:
        return self.server_kw * self.utilization * HOURS_PER_YEAR * self.pue

    @property
    def energy_cost_per_year(self) -> float:
        return self.energy_kwh_per_year * self.energy_price

    @property
    def capex(self) -> float | None:
        parts = [p.capex for p in self.parts]
        return None if any(c is None for c in parts) else sum(parts)  # type: ignore[arg-type]

    @property
    def cost_per_hour_at_peak(self) -> float | None:
        capex = self.capex
        if capex is None:
            return None
        amortised = capex / (self.amortization_years * HOURS_PER_YEAR)
        return amortised + self.server_kw * self.pue * self.energy_price

    @property
    def cost_per_1k_requests(self) -> float | None:
        per_hour = self.cost_per_hour_at_peak
        if per_hour is None or self.peak_qps <= 0:
            return None
        return per_hour / (self.peak_qps * 3600) * 1000

    @property
    def headroom(self) -> float | None:
        rooms = [p.headroom for p in self.placements]
        return min(rooms) if rooms else None

    @property
    def label(self) -> str:
        if self.kind == "mixed":
            return "+".join(p.hw.name for p in self.parts)
        return self.parts[0].hw.accel.key if self.parts else "-"

    def as_dict(self) -> dict:
        return {
            "option": self.name,
            "kind": self.kind,
            "complete": self.complete,
            "excludedModels": self.excluded,
            "servers": self.servers,
            "accelerators": self.accelerators,
            "headroom": _r(self.headroom, 4),
            "boardKw": round(self.board_kw, 3),
            "serverKw": round(self.server_kw, 3),
            "energyKwhPerYear": round(self.energy_kwh_per_year, 1),
            "energyCostPerYear": round(self.energy_cost_per_year, 2),
            "capex": _r(self.capex, 2),
            "costPerHourAtPeak": _r(self.cost_per_hour_at_peak, 4),
            "costPer1kRequests": _r(self.cost_per_1k_requests, 5),
            "peakQps": self.peak_qps,
            "violations": self.violations,
            "parts": [p.as_dict() for p in self.parts],
        }


@dataclass(frozen=True)
class Comparison:
    hardware: list[Hardware]
    options: list[Option]  # one per candidate, then the mixed plan when it uses >= 2 of them
    assignments: dict[str, str]  # mixed plan: model -> candidate
    recommended: str | None
    currency: str
    assumptions: dict
    warnings: list[str]

    def as_dict(self) -> dict:
        return {
            "currency": self.currency,
            "assumptions": self.assumptions,
            "hardware": [h.as_dict() for h in self.hardware],
            "options": [o.as_dict() for o in self.options],
            "mixedAssignments": self.assignments,
            "recommended": self.recommended,
            "formulas": FORMULAS,
            "warnings": self.warnings,
        }


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None or math.isinf(x) else round(x, digits)


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


def _describe(rule: PlacementConstraint) -> str:
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


def _priority_order(platform: Platform) -> list[Model]:
    rank = {t.name: -t.priority for t in platform.spec.tiers}
    return sorted(platform.spec.models, key=lambda m: rank.get(m.tier, 0))


def compare(platform: Platform, archs: dict[str, Architecture], names: list[str]) -> Comparison:
    """Raise CompareError listing every candidate or constraint that cannot be met."""
    spec = platform.spec
    known = [p.name for p in spec.pools] + [c.name for c in spec.candidate_pools]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CompareError(
            [
                CompareProblem(
                    (),
                    f"--compare: unknown pool '{n}'; name pools from spec.pools or "
                    f"spec.candidatePools (known: {', '.join(known) or 'none'})",
                )
                for n in unknown
            ]
        )
    if len(set(names)) != len(names):
        raise CompareError([CompareProblem((), "--compare: a pool is named twice")])
    hardware = [h for n in names if (h := resolve_hardware(platform, n)) is not None]
    models = _priority_order(platform)
    rules = spec.constraints.placement

    # 1. Which candidates each model may use, by the placement constraints.
    allowed: dict[str, list[Hardware]] = {}
    excluded_by: dict[tuple[str, str], str] = {}
    problems: list[CompareProblem] = []
    for model in models:
        ok = []
        for hw in hardware:
            blocking = next((r for r in rules if _applies(r, model) and not _allows(r, hw)), None)
            if blocking is None:
                ok.append(hw)
            else:
                excluded_by[(model.name, hw.name)] = f"constraint {_describe(blocking)}"
        allowed[model.name] = ok
        if not ok:
            i, rule = next((i, r) for i, r in enumerate(rules) if _applies(r, model))
            problems.append(
                CompareProblem(
                    ("spec", "constraints", "placement", i),
                    f"constraint {_describe(rule)} cannot be met for {model.name} by the compared "
                    f"pools ({', '.join(names)}); nearest: {_nearest_allowed(platform, rule, names)}",
                )
            )
    if problems:
        raise CompareError(problems)

    # 2. Size every allowed model on every candidate; a candidate that cannot carry one is an error.
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
    for hw, model, fit in failures:
        alternatives = [
            fits[(model.name, h.name)] for h in allowed[model.name] if (model.name, h.name) in fits
        ]
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
        problems.append(CompareProblem((), f"candidate '{hw.name}': {fit.problem}; {nearest}"))
    if problems:
        raise CompareError(problems)

    # 3. Every candidate alone (the models it may carry), then the mixed plan.
    options: list[Option] = []
    for hw in hardware:
        placed = [fits[(m.name, hw.name)] for m in models if (m.name, hw.name) in fits]
        excluded = {
            m.name: excluded_by[(m.name, hw.name)]
            for m in models
            if (m.name, hw.name) in excluded_by
        }
        parts = [_part(platform, archs, hw, placed)] if placed else []
        options.append(_option(platform, hw.name, "candidate", parts, excluded))
    assignments: dict[str, str] = {}
    if len(hardware) >= 2:
        hw_of = {h.name: h for h in hardware}
        by_hw: dict[str, list[Placement]] = {}
        for model in models:
            choices = [fits[(model.name, h.name)] for h in allowed[model.name]]
            chosen = min(
                choices,
                key=lambda p: _marginal_cost_key(p, hw_of[p.candidate], by_hw, spec),
            )
            assignments[model.name] = chosen.candidate
            by_hw.setdefault(chosen.candidate, []).append(chosen)
        if len(by_hw) >= 2:  # on one candidate, the mixed plan is that candidate's option
            parts = [_part(platform, archs, h, by_hw[h.name]) for h in hardware if h.name in by_hw]
            options.append(_option(platform, "mixed", "mixed", parts, {}))
        else:
            assignments = {}

    # 4. Limits on the whole purchase.
    problems = _limit_problems(platform, options)
    if problems:
        raise CompareError(problems)
    for option in options:
        if not option.complete:
            continue
        for part in option.parts:
            hw = part.hw
            if (
                option.kind == "candidate"
                and hw.declared_nodes
                and hw.declared_nodes < part.servers
            ):
                warnings.append(
                    f"{hw.name}: declares {hw.declared_nodes} nodes but the whole workload needs "
                    f"{part.servers}"
                )
    warnings += plan_warnings([p.plan for p in fits.values()])
    for option in options:
        for part in option.parts:
            warnings += part.storage.warnings
    return Comparison(
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


def _marginal_cost_key(
    p: Placement, hw: Hardware, assigned: dict[str, list[Placement]], spec
) -> tuple:
    """Greedy key: the cost per hour at peak of the servers this model adds to `hw` given the
    models already assigned there, then its share of servers; unknown prices rank last."""
    before = assigned.get(hw.name, [])
    added = len(_pack([*before, p], hw.per_node)) - len(_pack(before, hw.per_node))
    share = p.accelerators / hw.per_node
    energy = hw.server_kw * spec.costs.pue * spec.costs.electricity_per_kwh
    capex = hw.server_capex
    if capex is None:
        return (1, added * hw.server_kw, share * hw.server_kw, p.candidate)
    per_server_hour = capex / (spec.costs.amortization_years * HOURS_PER_YEAR) + energy
    return (0, added * per_server_hour, share * per_server_hour, p.candidate)


def _limit_problems(platform: Platform, options: list[Option]) -> list[CompareProblem]:
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
        problems.append(
            CompareProblem(
                ("spec", "constraints", "maxPowerKw"),
                f"maxPowerKw {limits.max_power_kw:g} cannot be met: the lowest-power feasible "
                f"option is {_option_name(low)} at {low.server_kw:.1f} kW ({low.servers} server{'s' if low.servers != 1 else ''}); "
                f"raise maxPowerKw to {math.ceil(low.server_kw * 10) / 10:g} or reduce demand",
            )
        )
    if limits.max_servers is not None and all(o.servers > limits.max_servers for o in complete):
        low = min(complete, key=lambda o: (o.servers, o.server_kw))
        problems.append(
            CompareProblem(
                ("spec", "constraints", "maxServers"),
                f"maxServers {limits.max_servers} cannot be met: the feasible option with the "
                f"fewest servers is {_option_name(low)} with {low.servers}; raise maxServers to "
                f"{low.servers} or reduce demand",
            )
        )
    return problems


def _option_name(o: Option) -> str:
    if o.kind == "mixed":
        return "the mixed plan (" + " + ".join(f"'{p.hw.name}'" for p in o.parts) + ")"
    return f"'{o.name}'"


def _recommend(options: list[Option]) -> str | None:
    ok = [o for o in options if o.complete and not o.violations]
    if not ok:
        return None
    priced = [o for o in ok if o.cost_per_1k_requests is not None]
    if priced:
        return min(priced, key=lambda o: (o.cost_per_1k_requests, o.server_kw)).name
    return min(ok, key=lambda o: (o.server_kw, o.servers)).name


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


def _biggest_memory() -> str:
    a = max(accelerators().values(), key=lambda a: a.memory_gib)
    return f"e.g. {a.key}, {a.memory_nominal}"
