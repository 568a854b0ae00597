"""The capacity plan: every model version on every pool it may use, then tiers and pools.

Pure: takes the loaded platform and resolved architectures, returns data. The CLI prints it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from xpool.capacity.memory import (
    GIB,
    MemoryFootprint,
    footprint,
    kv_token_capacity,
)
from xpool.capacity.parallelism import smallest_fitting, valid_tp_degrees
from xpool.capacity.quantization import weight_bytes_split
from xpool.capacity.shares import tier_accelerators
from xpool.capacity.throughput import (
    QpsBounds,
    compute_peak,
    decode_tokens_per_second_bound,
    prefill_seconds_bound,
    prompt_tokens,
    qps_bounds,
)
from xpool.catalog.accelerators import Accelerator, accelerators
from xpool.catalog.architectures import Architecture
from xpool.config.models import Model, ModelVersion, Platform, Pool


def ceil_count(x: float) -> int:
    """Ceiling that ignores float noise (100 x 1.2 / 20 must be 6, not 7)."""
    return math.ceil(round(x, 9))


@dataclass(frozen=True)
class ModelPlan:
    model: str
    version: str
    pool: str
    tier: str
    fits: bool
    tp: int | None
    footprint: MemoryFootprint  # at `tp`, or at the largest TP tried when nothing fits
    kv_token_capacity: int
    instances_per_node: int
    decode_tokens_per_second_bound: int
    ttft_bound_ms: float
    qps_per_instance: float
    qps_source: str  # "measured" | "roofline estimate"
    qps_bounds: QpsBounds  # decode-, prefill- and request-limited QPS at this context
    ttft_slo_ms: float
    target_qps: float
    instances_needed: int
    nodes_needed: int
    active_parameters: int
    prompt_tokens: int
    # Token throughput of one instance, what the autoscaler sizes on (None: it counts QPS);
    # decode is None for encoders, which generate nothing.
    prefill_tokens_per_second: float | None = None
    decode_tokens_per_second: float | None = None
    token_source: str = "none"  # "measured" | "roofline estimate" | "none"

    @property
    def qps_bound(self) -> float:
        """The smallest of the roofline limits: no instance serves more at this context."""
        return self.qps_bounds.bound

    def as_dict(self) -> dict:
        fp = self.footprint
        return {
            "model": self.model,
            "version": self.version,
            "pool": self.pool,
            "tier": self.tier,
            "tp": self.tp,
            "weightBytes": fp.weight_bytes,
            "kvBytesPerToken": fp.kv_bytes_per_token,
            "kvBytesForContext": fp.kv_bytes_for_context,
            "activationBytes": fp.activation_bytes,
            "overheadBytesPerAccelerator": fp.overhead_bytes,
            "bytesPerAccelerator": fp.bytes_per_accelerator,
            "budgetBytesPerAccelerator": fp.budget_per_accelerator,
            "kvTokenCapacity": self.kv_token_capacity,
            "instancesPerNode": self.instances_per_node,
            "decodeTokensPerSecondBound": self.decode_tokens_per_second_bound,
            "ttftBoundMs": round(self.ttft_bound_ms, 3),
            "qpsPerInstance": round(self.qps_per_instance, 3),
            "qpsSource": self.qps_source,
            "qpsRooflineBound": round(self.qps_bound, 3),
            "targetQps": round(self.target_qps, 3),
            "instancesNeeded": self.instances_needed,
            "nodesNeeded": self.nodes_needed,
            "fits": self.fits,
            "activeParameters": self.active_parameters,
            "promptTokens": self.prompt_tokens,
            "kvBytesPerTokenPerAccelerator": fp.kv_bytes_per_token_per_accelerator,
            "kvBytesForContextPerAccelerator": fp.kv_bytes_for_context_per_accelerator,
            "qpsDecodeBound": _rounded(self.qps_bounds.decode),
            "qpsPrefillBound": _rounded(self.qps_bounds.prefill),
            "qpsRequestBound": _rounded(self.qps_bounds.request),
            "qpsLimitedBy": self.qps_bounds.limited_by,
            "prefillCompute": self.qps_bounds.compute,
            "prefillTokensPerSecond": _rounded(self.prefill_tokens_per_second),
            "decodeTokensPerSecond": _rounded(self.decode_tokens_per_second),
            "tokenSource": self.token_source,
        }


def _rounded(qps: float | None) -> float | None:
    return None if qps is None else round(qps, 3)


@dataclass(frozen=True)
class TierPlan:
    tier: str
    pool: str
    share: float
    deserved_accelerators: int
    guarantee_accelerators: int
    needed_accelerators: int
    models: tuple[str, ...]

    @property
    def holds_peak(self) -> bool:
        return self.needed_accelerators <= self.deserved_accelerators

    def as_dict(self) -> dict:
        return {
            "tier": self.tier,
            "pool": self.pool,
            "share": self.share,
            "deservedAccelerators": self.deserved_accelerators,
            "guaranteeAccelerators": self.guarantee_accelerators,
            "neededAccelerators": self.needed_accelerators,
            "models": list(self.models),
            "holdsPeak": self.holds_peak,
        }


@dataclass(frozen=True)
class PoolPlan:
    pool: str
    vendor: str
    accelerator: str
    nodes: int
    accelerators: int
    memory_bytes_per_accelerator: int
    needed_accelerators: int

    def as_dict(self) -> dict:
        return {
            "pool": self.pool,
            "vendor": self.vendor,
            "accelerator": self.accelerator,
            "nodes": self.nodes,
            "accelerators": self.accelerators,
            "memoryBytesPerAccelerator": self.memory_bytes_per_accelerator,
            "neededAccelerators": self.needed_accelerators,
            "peakUtilization": round(self.needed_accelerators / self.accelerators, 4),
        }


@dataclass(frozen=True)
class CapacityPlan:
    models: list[ModelPlan]
    tiers: list[TierPlan]
    pools: list[PoolPlan]
    placements: dict[str, ModelPlan] = field(default_factory=dict)  # model name -> sized placement
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "models": [m.as_dict() for m in self.models],
            "tiers": [t.as_dict() for t in self.tiers],
            "pools": [p.as_dict() for p in self.pools],
            "warnings": self.warnings,
        }


def measured_qps(model: Model, pool: Pool) -> float | None:
    figure = model.per_instance_qps
    if isinstance(figure, dict):
        return figure.get(pool.name)
    return figure


def footprint_at(
    platform: Platform, model: Model, version: ModelVersion, arch: Architecture, pool: Pool
) -> Callable[[int], MemoryFootprint]:
    """The memory footprint of one instance of `version` on `pool`, as a function of TP."""
    accel = accelerators()[pool.accelerator]
    overhead = int(platform.spec.planning.runtime_overhead_gib * GIB)

    def at(tp: int) -> MemoryFootprint:
        return footprint(
            arch,
            weight_precision=version.weight_precision,
            kv_precision=version.kv_precision,
            context=model.context,
            tp=tp,
            accelerator_bytes=accel.memory_bytes,
            memory_utilization=pool.memory_utilization,
            overhead_bytes=overhead,
        )

    return at


def plan_version(
    platform: Platform, model: Model, version: ModelVersion, arch: Architecture, pool: Pool
) -> ModelPlan:
    """Size one model version on one pool."""
    at = footprint_at(platform, model, version, arch, pool)
    degrees = valid_tp_degrees(arch, pool.accelerators_per_node)
    fitting, attempt = smallest_fitting(degrees, at)
    fp = fitting or attempt or at(1)
    accel = accelerators()[pool.accelerator]
    return size_instance(platform, model, version, arch, pool, accel, fp, fits=fitting is not None)


def sizing_key(model: Model, version: ModelVersion, pool: Pool) -> tuple:
    """All that `plan_version` reads of a version and a pool besides their names: versions
    and pools equal in it size alike."""
    return (
        version.weight_precision,
        version.kv_precision,
        pool.accelerator,
        pool.accelerators_per_node,
        pool.memory_utilization,
        measured_qps(model, pool),
    )


def model_rows(platform: Platform, model: Model, arch: Architecture) -> list[ModelPlan]:
    """Every version of `model` on every pool it may use. Each kind of version and pool
    (`sizing_key`) is sized once and the row copied under the others' names: 3 versions in
    one precision on 20 pools of two kinds are sized twice, not 60 times."""
    pools = platform.model_pools(model)
    sized: dict[tuple, ModelPlan] = {}
    rows: list[ModelPlan] = []
    for version in model.versions:
        for pool in pools:
            first = sized.get(key := sizing_key(model, version, pool))
            if first is None:
                first = sized[key] = plan_version(platform, model, version, arch, pool)
                rows.append(first)
            else:
                rows.append(_renamed(first, version.version, pool.name))
    return rows


def _renamed(row: ModelPlan, version: str, pool: str) -> ModelPlan:
    """`row` under another version and pool name. `dataclasses.replace` would re-run
    `__init__` over every field: most of planning's time with 60,000 rows."""
    copy = object.__new__(ModelPlan)
    copy.__dict__.update(row.__dict__, version=version, pool=pool)
    return copy


def size_instance(
    platform: Platform,
    model: Model,
    version: ModelVersion,
    arch: Architecture,
    pool: Pool,
    accel: Accelerator,
    fp: MemoryFootprint,
    *,
    fits: bool,
) -> ModelPlan:
    """Instances and nodes for `version` on `pool` at footprint `fp`: the QPS per instance is
    the measured perInstanceQps, else the roofline bound (decode, prefill, whole request;
    capacity/throughput.py) x spec.planning.rooflineEfficiency."""
    context = model.context
    weights = weight_bytes_split(arch, version.weight_precision)
    decode = decode_tokens_per_second_bound(
        arch, weights, kv_precision=version.kv_precision, context=context, tp=fp.tp, accel=accel
    )
    prompt = prompt_tokens(context, model.type)
    bounds = qps_bounds(
        arch,
        model_type=model.type,
        context=context,
        decode_tokens_per_second=decode,
        prefill_seconds=prefill_seconds_bound(arch, prompt, fp.tp, accel, version.weight_precision),
        compute=compute_peak(accel, version.weight_precision)[1],
    )
    ttft_s = prefill_seconds_bound(arch, context.seq_len, fp.tp, accel, version.weight_precision)
    measured = measured_qps(model, pool)
    efficiency = platform.spec.planning.roofline_efficiency
    qps = measured or bounds.bound * efficiency
    prefill_tps, decode_tps, token_source = instance_tokens(
        model, prompt * bounds.prefill, decode, efficiency, measured_qps=measured is not None
    )
    target = model.demand.peak_qps * (1 + model.demand.headroom)
    per_node = pool.accelerators_per_node // fp.tp if fits else 0
    needed = max(model.instances.min, ceil_count(target / qps)) if qps > 0 else 0
    return ModelPlan(
        model=model.name,
        version=version.version,
        pool=pool.name,
        tier=model.tier,
        fits=fits,
        tp=fp.tp if fits else None,
        footprint=fp,
        kv_token_capacity=kv_token_capacity(fp) if fits else 0,
        instances_per_node=per_node,
        decode_tokens_per_second_bound=decode if model.type == "llm" else 0,
        ttft_bound_ms=ttft_s * 1000,
        qps_per_instance=qps,
        qps_source="measured" if measured else "roofline estimate",
        qps_bounds=bounds,
        ttft_slo_ms=model.slo.ttft_ms,
        target_qps=target,
        instances_needed=needed,
        nodes_needed=ceil_count(needed / per_node) if per_node else 0,
        active_parameters=arch.active_parameters,
        prompt_tokens=prompt,
        prefill_tokens_per_second=prefill_tps,
        decode_tokens_per_second=decode_tps,
        token_source=token_source,
    )


def instance_tokens(
    model: Model, prefill_bound: float, decode_bound: int, efficiency: float, *, measured_qps: bool
) -> tuple[float | None, float | None, str]:
    """(prefill tokens/s, decode tokens/s, their source) of one instance: the file's measured
    `perInstance` figures; else, unless `perInstanceQps` is measured (an estimate must not
    overrule a measurement: the autoscaler then counts QPS), the roofline bounds (prompt
    tokens/s at the compute peak, decode tokens/s at the batch) x rooflineEfficiency.
    Encoders generate nothing: no decode figure. Rerank models have none: Xinference reports
    their tokens only when asked (`return_len`) and not for every reranker, so the gateway
    cannot count them (gateway/usage.py)."""
    if model.type == "rerank":
        return None, None, "none"
    llm = model.type == "llm"
    given = model.per_instance
    if given is not None:  # complete: config/checks.py
        decode = given.decode_tokens_per_second if llm else None
        return given.prefill_tokens_per_second, decode, "measured"
    if measured_qps:
        return None, None, "none"
    return (
        prefill_bound * efficiency,
        decode_bound * efficiency if llm else None,
        "roofline estimate",
    )


def _sizing_rows(rows: list[ModelPlan]) -> dict[str, ModelPlan]:
    """Per pool, the version that needs the most accelerators there (versions run side by
    side during a rollout); a pool where no version fits is absent. One pass over the rows."""
    best: dict[str, ModelPlan] = {}
    for row in rows:
        if row.fits and (row.pool not in best or _need(row) > _need(best[row.pool])):
            best[row.pool] = row
    return best


def _need(row: ModelPlan) -> tuple[int, str]:
    return row.instances_needed * (row.tp or 0), row.version


def _place(
    platform: Platform,
    rows_by_model: dict[str, list[ModelPlan]],
    deserved: dict[tuple[str, str], int],
) -> dict[str, ModelPlan]:
    """Put each model's peak demand on one pool, highest-priority tier first.

    A model goes to the first pool in its preference order where its tier's share still
    holds it; failing that, to the pool where its tier has the most room left, so the plan
    shows the shortfall where it is smallest.
    """
    left = dict(deserved)
    placements: dict[str, ModelPlan] = {}
    tiers = sorted(platform.spec.tiers, key=lambda t: -t.priority)
    for tier in tiers:
        for model in (m for m in platform.spec.models if m.tier == tier.name):
            sizing = _sizing_rows(rows_by_model[model.name])
            options = [sizing[p.name] for p in platform.model_pools(model) if p.name in sizing]
            if not options:
                continue
            need = {r.pool: r.instances_needed * (r.tp or 0) for r in options}
            holding = [r for r in options if need[r.pool] <= left[(tier.name, r.pool)]]
            chosen = (
                holding[0]
                if holding
                else max(options, key=lambda r: left[(tier.name, r.pool)] - need[r.pool])
            )
            left[(tier.name, chosen.pool)] -= need[chosen.pool]
            placements[model.name] = chosen
    return placements


def plan_platform(platform: Platform, archs: dict[str, Architecture]) -> CapacityPlan:
    rows_by_model = {
        model.name: model_rows(platform, model, archs[model.name]) for model in platform.spec.models
    }
    splits = {
        pool.name: tier_accelerators(platform.spec.tiers, pool.nodes * pool.accelerators_per_node)
        for pool in platform.spec.pools
    }
    deserved = {
        (tier, pool): split.deserved
        for pool, by_tier in splits.items()
        for tier, split in by_tier.items()
    }
    placements = _place(platform, rows_by_model, deserved)

    tiers: list[TierPlan] = []
    pools: list[PoolPlan] = []
    for pool in platform.spec.pools:
        placed_here = [(name, row) for name, row in placements.items() if row.pool == pool.name]
        for tier in platform.spec.tiers:
            mine = [(name, row) for name, row in placed_here if row.tier == tier.name]
            tiers.append(
                TierPlan(
                    tier=tier.name,
                    pool=pool.name,
                    share=tier.share,
                    deserved_accelerators=splits[pool.name][tier.name].deserved,
                    guarantee_accelerators=splits[pool.name][tier.name].guarantee,
                    needed_accelerators=sum(r.instances_needed * (r.tp or 0) for _, r in mine),
                    models=tuple(name for name, _ in mine),
                )
            )
        pools.append(
            PoolPlan(
                pool=pool.name,
                vendor=pool.vendor,
                accelerator=pool.accelerator,
                nodes=pool.nodes,
                accelerators=pool.nodes * pool.accelerators_per_node,
                memory_bytes_per_accelerator=accelerators()[pool.accelerator].memory_bytes,
                needed_accelerators=sum(r.instances_needed * (r.tp or 0) for _, r in placed_here),
            )
        )
    rows = [row for model_rows in rows_by_model.values() for row in model_rows]
    return CapacityPlan(
        models=rows, tiers=tiers, pools=pools, placements=placements, warnings=plan_warnings(rows)
    )


def plan_warnings(rows: list[ModelPlan]) -> list[str]:
    """Figures that contradict physics or the SLO: worth a look before buying hardware."""
    out = []
    for r in rows:
        if not r.fits:
            continue
        name = f"{r.model} {r.version} on {r.pool}"
        if r.qps_source == "measured" and r.qps_per_instance > r.qps_bound * 1.001:
            out.append(f"{name}: {_above_bound(r)}")
        if r.ttft_bound_ms > r.ttft_slo_ms:
            out.append(
                f"{name}: prefill of seqLen tokens takes at least {r.ttft_bound_ms:.0f} ms at TP "
                f"{r.tp}, above slo.ttftMs {r.ttft_slo_ms:g}; shorten prompts or use a faster pool"
            )
    return out


# How a warning names each limit of throughput.QpsBounds.
LIMITS = {
    "decode": "the decode bound (memory bandwidth of TP {tp})",
    "prefill": "the prefill bound ({prompt} prompt tokens at the {compute} peak of TP {tp})",
    "request": "the request bound (each batch slot held for prefill + outputTokens steps)",
}


def _above_bound(r: ModelPlan) -> str:
    """Why a declared perInstanceQps cannot be: every limit it exceeds, with its figure."""
    bounds = r.qps_bounds
    context = {"prompt": r.prompt_tokens, "compute": bounds.compute, "tp": r.tp}
    exceeded = [
        f"{LIMITS[name].format(**context)} {qps:.1f}"
        for name, qps in bounds.limits.items()
        if r.qps_per_instance > qps * 1.001
    ]
    return (
        f"perInstanceQps {r.qps_per_instance:g} exceeds the roofline bound {r.qps_bound:.1f} "
        f"at this context: {', '.join(exceeded)}; check context (seqLen, outputTokens, batch), "
        "the precision, or the measurement"
    )
