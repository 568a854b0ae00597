"""The instances one model needs to meet its TTFT SLO (`autoscaling.mode: slo`).

Each instance is `context.batch` request slots (continuous batching: a request takes a free
slot at once). A request holds its slot for its prefill (mean prompt / prefill tokens/s of
the instance) and then one decode step per generated token (batch / decode tokens/s each):
the plan's request bound and the simulator's service model. Arrivals wait in the gateway's
queue for a slot, so the model's instances together are a G/G/c queue with c = instances x
batch (policy/queueing.py), and its TTFT at the SLO's percentile is that percentile of the
wait plus the mean prompt's prefill. The slots of an instance share its compute, so the
target also keeps prompt tokens/s under the instances' prefill capacity (near it, prefill
itself queues, which the slot model does not see). The target is the fewest instances within
`instances.min..max` whose predicted TTFT is within `slo.ttftMs` at the observed arrival
rate x (1 + `autoscaling.slo.headroom`). Why the model, its inputs and their limits:
docs/scheduling.md, "SLO-aware targets".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from xpool.policy.queueing import wait_quantile
from xpool.policy.spec import ModelSpec, ScalingSpec
from xpool.policy.state import LoadObs

POISSON_CV2 = 1.0  # arrival variability assumed while none is measured


@dataclass(frozen=True)
class _Queue:
    """One model's slots, service and arrivals, as the queueing model sees them."""

    batch: int
    lam: float  # arrivals/s sized for (observed x (1 + headroom))
    service: float  # seconds a request holds its slot
    first_token: float  # seconds from taking a slot to the first token
    prefill_load: float  # instance-seconds of prefill compute per request (slots share it)
    ca2: float
    cs2: float
    q: float

    def ttft(self, instances: int) -> float:
        servers = instances * self.batch
        wait = wait_quantile(servers, self.lam, self.service, self.ca2, self.cs2, self.q)
        return wait + self.first_token


@dataclass(frozen=True)
class SloNeed:
    instances: int  # fewest within instances.min..max meeting the SLO (max if none does)
    met: bool  # the SLO is met at `instances`
    ttft: float  # predicted TTFT (s) at the percentile with `instances`
    ttft_ready: float  # ... with the ready instances (inf: they cannot keep up)
    inputs: dict[str, Any]

    def describe(self, model: ModelSpec, ready: int) -> str:
        """The decision's reason: what the queueing model predicts now and at the target."""
        pct = f"p{model.slo_quantile * 100:g}"
        slo_ms = (model.ttft_slo or 0.0) * 1000
        at = "overloaded" if math.isinf(self.ttft_ready) else f"{self.ttft_ready * 1000:.0f} ms"
        fit = "within" if self.met else "over"
        return (
            f"slo: {pct} TTFT {at} predicted at {ready} ready, "
            f"{self.ttft * 1000:.0f} ms at {self.instances} ({fit} {slo_ms:g} ms; "
            f"{self.inputs['arrivalsPerS']:.3g} arrivals/s sized, "
            f"arrival cv2 {self.inputs['arrivalCv2']:.2g})"
        )


def _queue(model: ModelSpec, scaling: ScalingSpec, load: LoadObs) -> _Queue | str:
    """The model's queue from its load, or why it cannot be built (then the band sizes it)."""
    if model.ttft_slo is None or not model.request_limit:
        return "no slo.ttftMs or request limit"
    if load.qps is None:
        return "QPS not measured"
    if model.prefill_tokens_per_s is None or load.prompt_tokens_per_s is None:
        return "no prefill token figures"
    llm = model.decode_tokens_per_s is not None
    if llm and load.completion_tokens_per_s is None:
        return "no completion token rate"
    batch = model.request_limit
    qps = load.qps
    if qps > 0 and not load.prompt_tokens_per_s:
        # every request of the window was refused (429s count as requests, tokens only
        # come with answers): no service time to size on
        return "requests without answered tokens (all refused?)"
    prompt = load.prompt_tokens_per_s / qps if qps > 0 else 0.0
    prefill = prompt / model.prefill_tokens_per_s
    if llm:
        assert model.decode_tokens_per_s is not None and load.completion_tokens_per_s is not None
        answer = load.completion_tokens_per_s / qps if qps > 0 else 0.0
        service = prefill + answer * batch / model.decode_tokens_per_s
    else:  # an encoder answers when its batch's prefill is done
        service = prefill = batch * prefill
    if prefill >= model.ttft_slo:
        return (
            f"the mean prompt's prefill alone takes {prefill * 1000:.0f} ms >= "
            f"slo.ttftMs {model.ttft_slo * 1000:g}"
        )
    ca2 = POISSON_CV2 if load.arrival_cv2 is None else load.arrival_cv2
    return _Queue(
        batch=batch,
        lam=qps * (1 + scaling.slo_headroom),
        service=service,
        first_token=prefill,
        prefill_load=prompt / model.prefill_tokens_per_s,
        ca2=ca2,
        cs2=scaling.service_cv**2,
        q=model.slo_quantile,
    )


def slo_need(model: ModelSpec, scaling: ScalingSpec, load: LoadObs, ready: int) -> SloNeed | str:
    """The SLO target of `model`, or why it has none (a string for the decision's reason)."""
    queue = _queue(model, scaling, load)
    if isinstance(queue, str):
        return queue
    assert model.ttft_slo is not None
    slo = model.ttft_slo
    # with arrivals, at least one instance, and enough slots that the queue is stable
    lo = model.min
    if queue.lam > 0:
        slots = math.floor(queue.lam * queue.service / queue.batch) + 1
        lo = max(lo, slots, math.floor(queue.lam * queue.prefill_load) + 1)
    hi = model.max
    found: dict[int, float] = {}

    def ttft(instances: int) -> float:
        if instances not in found:
            found[instances] = queue.ttft(instances)
        return found[instances]

    # the predicted TTFT falls as instances are added: the first within the SLO (instances.max
    # when none is) is usually a few above the stability bound, so gallop up from it to a
    # count within the SLO, then bisect below that
    lo = min(lo, hi)
    probe, step = lo, 1
    while probe < hi and ttft(probe) > slo:
        lo = probe + 1
        probe, step = min(hi, probe + step), step * 2
    hi = probe
    while lo < hi:
        mid = (lo + hi) // 2
        if ttft(mid) <= slo:
            hi = mid
        else:
            lo = mid + 1
    need = ttft(lo)
    inputs = {
        "ttftSloMs": slo * 1000,
        "quantile": model.slo_quantile,
        "arrivalsPerS": round(queue.lam, 6),
        "arrivalCv2": queue.ca2,
        "arrivalCv2Measured": load.arrival_cv2 is not None,
        "serviceCv2": queue.cs2,
        "serviceSeconds": round(queue.service, 6),
        "firstTokenSeconds": round(queue.first_token, 6),
        "slotsPerInstance": queue.batch,
        "predictedTtftMs": None if math.isinf(need) else round(need * 1000, 3),
    }
    return SloNeed(lo, need <= slo, need, ttft(ready), inputs)
