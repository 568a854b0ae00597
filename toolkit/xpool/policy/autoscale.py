"""How many instances one model should have, from its load, ignoring everyone else.

The load is tokens when the model's per-instance token capacities (prefill tokens/s; decode
tokens/s for LLMs) and the matching token rates are known: a request's cost grows with its
prompt and its answer, so a trace of long requests needs more instances than its QPS says,
and one of short requests fewer. Instances needed = max(prompt tokens/s / prefill capacity,
completion tokens/s / decode capacity), the larger of the two, because decode is bound by
memory bandwidth and prefill by compute, which a batching engine overlaps in the same steps.
The `qpsRatio` thresholds act on that token utilisation as they do on QPS. Without token
figures, QPS against `qps_per_instance` as follows; every reason names the signal.

A queued batch (`LoadObs.batch_queued_*`) is demand that waits: the instances that would work
it off within `scaleDown.stabilization` (its tokens at the rate one instance serves the
reference request's tokens, else its requests at `qps_per_instance`) are added to every
signal (`+ batch` in the reasons). A large backlog so asks for `instances.max`, and `decide`
grants what the tier rules allow: the lowest tier borrows idle capacity and is the first
reclaimed.

The `utilization` thresholds act on the model's own saturation (requests in flight over its
ready instances' request limits: how busy its engines are), not on the accelerator
utilisation Prometheus reports: that is a pool's average, shared by every model on the pool,
so a busy neighbour (a batch filling idle capacity) would scale every model up and keep it
there. It is kept in the decision's inputs, as information.

Up: when QPS exceeds `scaleUp.qpsRatio` of what its ready instances serve, or saturation
exceeds `scaleUp.utilization`; by at most `step` instances per
`interval`, counting instances still loading (a step rule that ignores them overshoots: the
load stays high until they are ready). Down: only after QPS stayed under
`scaleDown.qpsRatio` of capacity (and saturation under `scaleDown.utilization`) for the whole
`stabilization` window, never within that window of a scale-up, never on missing metrics, and
only to what keeps the remaining instances at the midpoint between the two ratios (so noise in
the measured QPS does not scale straight back up). The floor (`instances.min`) is restored at once.

With `autoscaling.mode: slo` the target is instead the fewest instances whose predicted TTFT
meets the model's SLO (`slo_target.py`), reached by the same step, stabilization and
missing-metrics rules; a model the queueing model cannot size (no token figures) keeps the band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from xpool.policy.slo_target import SloNeed, slo_need
from xpool.policy.spec import ModelSpec, ScalingSpec
from xpool.policy.state import InstanceObs, LoadObs, ModelMemory


@dataclass(frozen=True)
class Target:
    desired: int  # loading + ready instances wanted after this pass
    reason: str
    memory: ModelMemory
    inputs: dict[str, Any]


@dataclass(frozen=True)
class _Rate:
    """One load signal against what one instance serves of it."""

    name: str  # "prefill" | "decode" | "" (QPS)
    rate: float
    per_instance: float
    unit: str  # "QPS" | "tok/s"

    def needed(self, ratio: float) -> int:
        """Instances that serve `rate` while each stays at or under `ratio` of its capacity."""
        return math.ceil(round(self.rate / (ratio * self.per_instance), 9)) if self.rate > 0 else 0

    def load(self) -> str:
        return f"{self.name} {self.rate:.3g} {self.unit}".lstrip()

    def against(self, ratio: float, ready: int) -> str:
        """`ratio` of the ready instances' capacity, with its arithmetic."""
        cap = ready * self.per_instance
        return f"{ratio:.0%} of {cap:.3g} {self.unit} ({ready} ready x {self.per_instance:.3g})"


def _token_rates(model: ModelSpec, load: LoadObs) -> tuple[_Rate, ...]:
    """The token signals when every capacity of the model has its measured rate, else ()."""
    if model.prefill_tokens_per_s is None or load.prompt_tokens_per_s is None:
        return ()
    rates = [_Rate("prefill", load.prompt_tokens_per_s, model.prefill_tokens_per_s, "tok/s")]
    if model.decode_tokens_per_s is not None:
        if load.completion_tokens_per_s is None:
            return ()
        rates.append(
            _Rate("decode", load.completion_tokens_per_s, model.decode_tokens_per_s, "tok/s")
        )
    return tuple(rates)


def backlog_instances(model: ModelSpec, scaling: ScalingSpec, load: LoadObs) -> float:
    """Instances that would work the queued batch off within `scaleDown.stabilization` (how
    long capacity is kept anyway): 0 without a backlog."""
    if load.batch_queued_tokens and model.tokens_per_request:
        per_instance = model.qps_per_instance * model.tokens_per_request
        seconds = load.batch_queued_tokens / per_instance
    elif load.batch_queued_requests:
        seconds = load.batch_queued_requests / model.qps_per_instance
    else:
        return 0.0
    return seconds / max(scaling.stabilization, scaling.interval, 1.0)


def _saturation(ready: list[InstanceObs], limit: int | None) -> float | None:
    if not ready or not limit:
        return None
    return sum(i.inflight for i in ready) / (len(ready) * limit)


class _Pass:
    """One model in one pass: what it runs and serves, and the `Target` it ends with."""

    __slots__ = (
        "active",
        "backlog",
        "capacity",
        "failed",
        "in_interval",
        "inputs",
        "load",
        "loading",
        "memory",
        "model",
        "now",
        "ready",
        "saturation",
        "scaling",
        "since_up",
        "tokens",
    )

    def __init__(
        self,
        model: ModelSpec,
        scaling: ScalingSpec,
        instances: list[InstanceObs],
        load: LoadObs,
        memory: ModelMemory,
        now: float,
    ) -> None:
        self.model = model
        self.scaling = scaling
        self.load = load
        self.memory = memory
        self.now = now
        self.ready = ready = [i for i in instances if i.state == "ready"]
        self.loading = loading = [i for i in instances if i.state == "loading"]
        self.failed = [i for i in instances if i.state == "failed"]
        self.active = len(ready) + len(loading)  # instances counted towards the target
        self.capacity = capacity = len(ready) * model.qps_per_instance  # QPS they serve
        self.saturation = saturation = _saturation(ready, model.request_limit)
        self.tokens = tokens = _token_rates(model, load)  # empty: sized on QPS
        self.backlog = backlog = backlog_instances(model, scaling, load)
        self.inputs: dict[str, Any] = {
            "sizedOn": "tokens" if tokens else "qps",
            "promptTokensPerS": load.prompt_tokens_per_s,
            "completionTokensPerS": load.completion_tokens_per_s,
            "prefillTokensPerSPerInstance": model.prefill_tokens_per_s,
            "decodeTokensPerSPerInstance": model.decode_tokens_per_s,
            "qps": load.qps,
            "utilization": load.utilization,
            "saturation": None if saturation is None else round(saturation, 4),
            "ready": len(ready),
            "loading": len(loading),
            "capacityQps": round(capacity, 4),
            "missing": list(load.missing),
            "batchQueuedRequests": load.batch_queued_requests,
            "batchQueuedTokens": load.batch_queued_tokens,
            "batchBacklogInstances": round(backlog, 4),
        }
        # seconds since the last scale-up; within scaleUp.interval of it, no further step
        self.since_up = since_up = None if memory.last_up is None else now - memory.last_up
        self.in_interval = since_up is not None and since_up < scaling.interval

    def target(self, desired: int, reason: str, **changes: float | None) -> Target:
        if "low_since" in changes and changes["low_since"] is None:
            changes["low_need"] = None  # a run of low passes ends, and its peak target with it
        return Target(desired, reason, replace(self.memory, **changes), self.inputs)


def autoscale(
    model: ModelSpec,
    scaling: ScalingSpec,
    instances: list[InstanceObs],
    load: LoadObs,
    memory: ModelMemory,
    now: float,
) -> Target:
    p = _Pass(model, scaling, instances, load, memory, now)
    # a failed launch waits out scaleUp.interval; below instances.min or above
    # instances.max, the bound is restored at once
    active = p.active
    if p.failed and p.in_interval:
        return p.target(
            active,
            f"last launch failed ({p.failed[0].error or 'no reason given'}); retrying "
            f"after scaleUp.interval ({scaling.interval:g} s)",
            low_since=None,
        )
    if active < model.min:
        return p.target(
            model.min, f"{active} active < instances.min {model.min}", last_up=now, low_since=None
        )
    if active > model.max:
        return p.target(
            model.max, f"{active} active > instances.max {model.max}", last_down=now, low_since=None
        )
    if scaling.mode == "slo":
        need = slo_need(model, scaling, load, len(p.ready))
        if isinstance(need, SloNeed):
            return _by_slo(p, need)
        band = _scale_up(p) or _scale_down(p)
        return replace(band, reason=f"{band.reason} (slo sizing unavailable: {need})")
    return _scale_up(p) or _scale_down(p)


def _by_slo(p: _Pass, need: SloNeed) -> Target:
    """Towards the SLO target: up at once (by `step` per interval), down after the target
    stayed below the active instances for scaleDown.stabilization, never on missing metrics
    or while instances load."""
    p.inputs["sizedOn"] = "slo"
    p.inputs["slo"] = need.inputs
    why = need.describe(p.model, len(p.ready))
    active = p.active
    if need.instances > active:
        return _step_up(p, need.instances, why)
    if p.load.missing:
        return p.target(
            active,
            f"metrics missing ({', '.join(p.load.missing)}): holding, never scaling down blind",
            low_since=None,
        )
    if need.instances == active or p.loading:
        return p.target(active, why, low_since=None)
    memory = p.memory
    low_since = memory.low_since if memory.low_since is not None else p.now
    floor = max(need.instances, int(memory.low_need or 0))
    p.memory = replace(memory, low_need=floor)
    why += f"; {floor} needed at most for {p.now - low_since:.0f} s"
    return _step_down(p, floor, why, low_since)


def _rates(p: _Pass) -> tuple[_Rate, ...]:
    """What the model is sized on: its token rates, else its QPS (none when unmeasured),
    each with the queued batch's instances added."""
    rates: tuple[_Rate, ...] = p.tokens
    if not rates and p.load.qps is not None:
        rates = (_Rate("", p.load.qps, p.model.qps_per_instance, "QPS"),)
    if not p.backlog:
        return rates
    if not rates:
        rates = (_Rate("", 0.0, p.model.qps_per_instance, "QPS"),)
    return tuple(
        _Rate(
            f"{r.name} + batch" if r.name else "with batch",
            r.rate + p.backlog * r.per_instance,
            r.per_instance,
            r.unit,
        )
        for r in rates
    )


def _scale_up(p: _Pass) -> Target | None:
    """None unless the model is over a scale-up threshold. Then up to what that calls for
    (enough instances for its token rates or QPS at `scaleUp.qpsRatio`, or one more ready
    instance when saturation is high), capped by instances.max, counting
    loading instances, by at most `step` per scaleUp.interval."""
    model = p.model
    scaling = p.scaling
    active = p.active
    hot: list[str] = []
    wanted = active
    ratio = scaling.up_qps_ratio
    for rate in _rates(p):
        if rate.rate > ratio * (len(p.ready) * rate.per_instance):
            hot.append(f"{rate.load()} > {rate.against(ratio, len(p.ready))}")
            wanted = max(wanted, rate.needed(ratio))
    if p.saturation is not None and p.saturation > scaling.up_utilization:
        hot.append(f"saturation {p.saturation:.0%} > {scaling.up_utilization:.0%}")
        wanted = max(wanted, len(p.ready) + 1)
    if not hot:
        return None
    why = "; ".join(hot)
    wanted = min(wanted, model.max)
    if wanted <= active:
        if active >= model.max:
            return p.target(active, f"{why}; at instances.max {model.max}", low_since=None)
        return p.target(
            active, f"{why}; {len(p.loading)} instance(s) still loading cover it", low_since=None
        )
    return _step_up(p, wanted, why)


def _step_up(p: _Pass, wanted: int, why: str) -> Target:
    """Towards `wanted` (> active) by at most `step` per scaleUp.interval."""
    scaling = p.scaling
    active = p.active
    if p.in_interval:
        assert p.since_up is not None
        return p.target(
            active,
            f"{why}; next step in {scaling.interval - p.since_up:.0f} s (scaleUp.interval)",
            low_since=None,
        )
    desired = min(active + scaling.step, wanted)
    if desired < wanted:
        why += f"; {wanted} needed, {scaling.step} more per scaleUp.interval"
    return p.target(desired, why, last_up=p.now, low_since=None)


def _scale_down(p: _Pass) -> Target:
    """Down only on full metrics, with nothing loading, after the load stayed low for
    scaleDown.stabilization and that long after the last scale-up; otherwise hold."""
    model = p.model
    scaling = p.scaling
    load = p.load
    active = p.active
    now = p.now
    if load.missing:
        return p.target(
            active,
            f"metrics missing ({', '.join(load.missing)}): holding, never scaling down blind",
            low_since=None,
        )
    rates = _rates(p)
    ratio = scaling.down_qps_ratio
    low = (
        bool(rates)
        and not p.loading
        and p.ready
        and all(r.rate < ratio * (len(p.ready) * r.per_instance) for r in rates)
        and (p.saturation is None or p.saturation < scaling.down_utilization)
    )
    if not low:
        return p.target(active, "load within the scaling band", low_since=None)
    low_since = p.memory.low_since if p.memory.low_since is not None else now
    quiet = now - low_since
    if p.tokens or p.backlog:
        why = "; ".join(f"{r.load()} < {r.against(ratio, len(p.ready))}" for r in rates)
        why += f" for {quiet:.0f} s"
    else:
        qps = rates[0].rate
        why = f"{qps:.3g} QPS < {ratio:.0%} of {p.capacity:.3g} QPS for {quiet:.0f} s"
    # to the midpoint between the two ratios, not the scale-up ratio itself: measured load is
    # noisy, and landing just under the scale-up line makes the next pass scale straight back
    middle = (scaling.up_qps_ratio + scaling.down_qps_ratio) / 2
    floor = max(model.min, *(r.needed(middle) for r in rates))
    return _step_down(p, floor, why, low_since)


def _step_down(p: _Pass, floor: int, why: str, low_since: float) -> Target:
    """To `floor` once the load stayed low (since `low_since`) for scaleDown.stabilization
    and that long after the last scale-up; otherwise hold, remembering since when."""
    scaling = p.scaling
    active = p.active
    now = p.now
    quiet = now - low_since
    if floor >= active:
        return p.target(active, f"{why}; {active} needed", low_since=low_since)
    if quiet < scaling.stabilization:
        return p.target(
            active,
            f"{why} of scaleDown.stabilization {scaling.stabilization:g} s",
            low_since=low_since,
        )
    if p.since_up is not None and p.since_up < scaling.stabilization:
        return p.target(
            active,
            f"{why}; last scale-up {p.since_up:.0f} s ago is within the stabilization window",
            low_since=low_since,
        )
    return p.target(floor, why, last_down=now, low_since=None)
