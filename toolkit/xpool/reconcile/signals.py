"""Demand signals per model from Prometheus: QPS, prompt and completion tokens/s, the batch
work queued for it, the utilisation of its pool, and (`autoscaling.mode: slo`) the
variability of its arrivals.

A signal is trusted only when its source is fresh: QPS and tokens only while the gateways are
being scraped (a model with no series then really has 0 QPS); utilisation only where the
pool's vendor has a query and it returned a value. Token rates are read for models sized on
tokens (`ModelSpec.prefill_tokens_per_s`): a model with requests and no token series has a
gateway that does not count them (or answers without usage), and its tokens are missing. What should be there and is not is reported as
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
    model_prompt_tokens: str
    model_completion_tokens: str
    model_arrival_cv2: str
    model_batch_queued_requests: str
    model_batch_queued_tokens: str
    utilization: dict[str, str]  # vendor -> PromQL (0..1)


def queries_for(platform: Platform) -> Queries:
    defaults: dict[str, Any] = policy_yaml("promql.yaml")["reconciler"]
    prom = platform.spec.prometheus
    mine = prom.queries if prom is not None else None
    return Queries(
        model_qps=(mine and mine.model_qps) or defaults["modelQps"],
        gateway_up=(mine and mine.gateway_up) or defaults["gatewayUp"],
        model_prompt_tokens=(mine and mine.model_prompt_tokens) or defaults["modelPromptTokens"],
        model_completion_tokens=(mine and mine.model_completion_tokens)
        or defaults["modelCompletionTokens"],
        model_arrival_cv2=(mine and mine.model_arrival_cv2) or defaults["modelArrivalCv2"],
        model_batch_queued_requests=(mine and mine.model_batch_queued_requests)
        or defaults["modelBatchQueuedRequests"],
        model_batch_queued_tokens=(mine and mine.model_batch_queued_tokens)
        or defaults["modelBatchQueuedTokens"],
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
    qps = _by_model(prom, queries.model_qps) if fresh else {}
    tokens = fresh and any(m.prefill_tokens_per_s is not None for m in spec.models)
    prompt = _by_model(prom, queries.model_prompt_tokens) if tokens else {}
    completion = _by_model(prom, queries.model_completion_tokens) if tokens else {}
    slo = fresh and spec.scaling.mode == "slo"
    cv2 = _by_model(prom, queries.model_arrival_cv2) if slo else {}
    batch_lines = _by_model(prom, queries.model_batch_queued_requests) if fresh else {}
    batch_tokens = _by_model(prom, queries.model_batch_queued_tokens) if fresh else {}
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
        rates: dict[str, float | None] = {"prompt": None, "completion": None}
        if tokens and model.prefill_tokens_per_s is not None:
            served = qps.get(model.name, 0.0) > 0
            wanted = {"prompt": prompt}
            if model.decode_tokens_per_s is not None:
                wanted["completion"] = completion
            for kind, found in wanted.items():
                rates[kind] = found.get(model.name, None if served else 0.0)
                if rates[kind] is None:
                    missing.append(f"{kind} tokens (no series while requests are served)")
        if slo and model.name not in cv2 and qps.get(model.name, 0.0) > 0:
            missing.append("arrival cv2 (no series while requests are served)")
        out[model.name] = LoadObs(
            qps=qps.get(model.name, 0.0) if fresh else None,
            utilization=util,
            missing=tuple(missing),
            prompt_tokens_per_s=rates["prompt"],
            completion_tokens_per_s=rates["completion"],
            arrival_cv2=cv2.get(model.name),
            # a gateway exports backlog gauges only for models with batch work
            batch_queued_requests=batch_lines.get(model.name, 0.0) if fresh else None,
            batch_queued_tokens=batch_tokens.get(model.name, 0.0) if fresh else None,
        )
    return out


def _by_model(prom: PrometheusClient, query: str) -> dict[str, float]:
    """The query's values summed per `model` label (NaN skipped)."""
    out: dict[str, float] = {}
    for sample in prom.query(query):
        if "model" in sample.labels and not math.isnan(sample.value):
            out[sample.labels["model"]] = out.get(sample.labels["model"], 0.0) + sample.value
    return out
