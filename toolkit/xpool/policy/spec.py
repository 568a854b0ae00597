"""What the policy needs to know of a platform, flattened from the platform file and its plan.

The reconciler and the simulator both decide from a `PolicySpec`, so the simulator can build one
for a platform that does not exist yet, and tests can write one out by hand.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from xpool.capacity.plan import CapacityPlan
from xpool.capacity.shares import tier_accelerators
from xpool.capacity.worker_groups import WorkerGroup, worker_groups
from xpool.config.models import Model, Platform


@dataclass(frozen=True)
class PoolSpec:
    name: str
    accelerators: int


@dataclass(frozen=True)
class TierSpec:
    name: str
    priority: int
    borrow: bool
    preemptible: bool
    deserved: dict[str, int]  # pool -> whole accelerators of the tier's share
    guarantee: dict[str, int]  # pool -> accelerators never lent


@dataclass(frozen=True)
class ModelSpec:
    name: str
    tier: str
    pool: str
    version: str  # the version autoscaling launches (the stable one)
    accelerators: int  # per instance (the tensor-parallel degree)
    qps_per_instance: float
    request_limit: int | None
    min: int
    max: int
    # Token throughput of one instance (plan or measured `perInstance`); None: the autoscaler
    # counts QPS. Encoders have no decode figure.
    prefill_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    # Prompt + completion tokens of the reference request `qps_per_instance` is measured on;
    # None: a queued batch is sized on its requests, not its tokens.
    tokens_per_request: float | None = None
    # Gateway weights of the versions (a rollout's override, else the file's); empty: only
    # `version`. `ahead`: a rollout's next step's weights, which instances are sized for too.
    weights: tuple[tuple[str, float], ...] = ()
    ahead: tuple[tuple[str, float], ...] = ()
    # `slo`: TTFT (seconds) that a share `slo_quantile` of requests should meet; None: none
    # given, and `autoscaling.mode: slo` sizes this model on the band.
    ttft_slo: float | None = None
    slo_quantile: float = 0.99

    @property
    def version_weights(self) -> tuple[tuple[str, float], ...]:
        return self.weights or ((self.version, 100.0),)


@dataclass(frozen=True)
class ScalingSpec:
    up_qps_ratio: float = 0.8
    up_utilization: float = 0.75
    step: int = 1
    interval: float = 30.0
    down_qps_ratio: float = 0.3
    down_utilization: float = 0.3
    stabilization: float = 300.0
    drain_timeout: float = 120.0
    mode: str = "band"  # "band" | "slo" (policy/slo_target.py)
    slo_headroom: float = 0.1  # mode slo: extra arrival rate sized for
    service_cv: float = 1.0  # mode slo: coefficient of variation of slot-holding times


@dataclass(frozen=True)
class PolicySpec:
    pools: tuple[PoolSpec, ...]
    tiers: tuple[TierSpec, ...]  # highest priority first
    models: tuple[ModelSpec, ...]  # highest-priority tier first, then file order
    scaling: ScalingSpec
    groups: tuple[WorkerGroup, ...] = ()  # the tiers' worker groups (worker_groups.py)

    @cached_property
    def _index(self) -> dict[tuple[str, str], TierSpec | ModelSpec | PoolSpec]:
        """By kind and name: one pass looks models up once per instance."""
        out: dict[tuple[str, str], TierSpec | ModelSpec | PoolSpec] = {}
        out.update({("tier", t.name): t for t in self.tiers})
        out.update({("model", m.name): m for m in self.models})
        out.update({("pool", p.name): p for p in self.pools})
        return out

    @cached_property
    def memo(self) -> dict[Hashable, Any]:
        """Answers of pure functions of this spec and a small key (queue shares by holdings),
        kept as long as the spec: the simulator decides millions of times over one spec."""
        return {}

    def tier(self, name: str) -> TierSpec:
        return self._index[("tier", name)]  # type: ignore[return-value]

    def model(self, name: str) -> ModelSpec | None:
        return self._index.get(("model", name))  # type: ignore[return-value]

    def pool(self, name: str) -> PoolSpec:
        return self._index[("pool", name)]  # type: ignore[return-value]


def stable_version(weights: list[tuple[str, float | None]]) -> str:
    """The version with the largest canary weight (default weights: the first gets 100)."""
    resolved = [
        (w if w is not None else (100.0 if i == 0 else 0.0), v) for i, (v, w) in enumerate(weights)
    ]
    best = max(w for w, _ in resolved)
    return next(v for w, v in resolved if w == best)


def file_weights(model: Model) -> tuple[tuple[str, float], ...]:
    """The platform file's weights (default: the first version 100, the others 0)."""
    return tuple(
        (v.version, v.weight if v.weight is not None else (100.0 if i == 0 else 0.0))
        for i, v in enumerate(model.versions)
    )


def policy_spec(platform: Platform, plan: CapacityPlan) -> PolicySpec:
    """The policy's view of `platform`, with each model on the pool and TP its plan chose.

    Models the plan could not place (nothing fits) are left out: the policy cannot launch them.
    """
    spec = platform.spec
    pools = tuple(PoolSpec(p.name, p.nodes * p.accelerators_per_node) for p in spec.pools)
    splits = {p.name: tier_accelerators(spec.tiers, p.accelerators) for p in pools}
    tiers = tuple(
        TierSpec(
            name=t.name,
            priority=t.priority,
            borrow=t.borrow,
            preemptible=t.preemptible,
            deserved={p: s[t.name].deserved for p, s in splits.items()},
            guarantee={p: s[t.name].guarantee for p, s in splits.items()},
        )
        for t in sorted(spec.tiers, key=lambda t: -t.priority)
    )
    rank = {t.name: i for i, t in enumerate(tiers)}
    models = []
    for model in sorted(spec.models, key=lambda m: rank[m.tier]):
        placed = plan.placements.get(model.name)
        if placed is None or placed.tp is None:
            continue
        models.append(
            ModelSpec(
                name=model.name,
                tier=model.tier,
                pool=placed.pool,
                version=stable_version([(v.version, v.weight) for v in model.versions]),
                weights=file_weights(model),
                accelerators=placed.tp,
                qps_per_instance=placed.qps_per_instance,
                prefill_tokens_per_s=placed.prefill_tokens_per_second,
                decode_tokens_per_s=placed.decode_tokens_per_second,
                request_limit=model.context.batch,
                tokens_per_request=model.context.seq_len // 2
                + (model.context.output_tokens if model.type == "llm" else 0),
                min=model.instances.min,
                max=model.instances.max,
                ttft_slo=model.slo.ttft_ms / 1000,
                slo_quantile=model.slo.percentile / 100,
            )
        )
    auto = spec.autoscaling
    scaling = ScalingSpec(
        up_qps_ratio=auto.scale_up.qps_ratio,
        up_utilization=auto.scale_up.utilization,
        step=auto.scale_up.step,
        interval=auto.scale_up.interval,
        down_qps_ratio=auto.scale_down.qps_ratio,
        down_utilization=auto.scale_down.utilization,
        stabilization=auto.scale_down.stabilization,
        drain_timeout=auto.drain_timeout,
        mode=auto.mode,
        slo_headroom=auto.slo.headroom,
        service_cv=auto.slo.service_cv,
    )
    return PolicySpec(pools, tiers, tuple(models), scaling, tuple(worker_groups(platform)))
