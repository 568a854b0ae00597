"""Demand signals per model from Prometheus: QPS, and the utilisation of its pool.

A signal is trusted only when its source is fresh: QPS only while the gateways are being
scraped (a model with no series then really has 0 QPS); utilisation only where the pool's
vendor has a query and it returned a value. What should be there and is not is reported as
missing, which stops scale-down (the policy never scales down blind) and never triggers
scale-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xpool.adapters.prometheus import PrometheusClient, Sample
from xpool.config.models import Platform
from xpool.policy.spec import PolicySpec
from xpool.policy.state import LoadObs
from xpool.render.environment import policy_yaml


@dataclass(frozen=True)
class Queries:
    model_qps: str
    gateway_up: str
    utilization: dict[str, str]  # vendor -> PromQL (0..1)


def queries_for(platform: Platform) -> Queries:
    defaults: dict[str, Any] = policy_yaml("promql.yaml")["reconciler"]
    prom = platform.spec.prometheus
    mine = prom.queries if prom is not None else None
    return Queries(
        model_qps=(mine and mine.model_qps) or defaults["modelQps"],
        gateway_up=(mine and mine.gateway_up) or defaults["gatewayUp"],
        utilization=dict((mine and mine.utilization) or defaults["utilization"]),
    )


def _value(samples: list[Sample]) -> float | None:
    values = [s.value for s in samples if not math.isnan(s.value)]
    return sum(values) / len(values) if values else None


def read_loads(
    prom: PrometheusClient,
    queries: Queries,
    spec: PolicySpec,
    pool_vendors: Mapping[str, str],
) -> dict[str, LoadObs]:
    """One LoadObs per model of `spec`. Raises RemoteError when Prometheus is unreachable."""
    fresh = bool(prom.query(queries.gateway_up))
    qps: dict[str, float] = {}
    if fresh:
        for sample in prom.query(queries.model_qps):
            if "model" in sample.labels and not math.isnan(sample.value):
                qps[sample.labels["model"]] = qps.get(sample.labels["model"], 0.0) + sample.value
    utilization: dict[str, float | None] = {}
    for vendor in sorted(set(pool_vendors.values())):
        query = queries.utilization.get(vendor)
        if not query:
            continue
        samples = prom.query(query)
        pools = [p for p, v in pool_vendors.items() if v == vendor]
        for pool in pools:
            labelled = [s for s in samples if s.labels.get("pool") == pool]
            unlabelled = [s for s in samples if "pool" not in s.labels]
            utilization[pool] = _value(labelled or unlabelled)
    out: dict[str, LoadObs] = {}
    for model in spec.models:
        missing = [] if fresh else ["qps (gateway scrape not fresh)"]
        util = utilization.get(model.pool)
        if model.pool in utilization and util is None:
            missing.append(f"utilization of pool {model.pool}")
        out[model.name] = LoadObs(
            qps=qps.get(model.name, 0.0) if fresh else None,
            utilization=util,
            missing=tuple(missing),
        )
    return out
