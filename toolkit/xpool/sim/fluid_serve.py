"""Fluid mode's gateway for one model: a tick's arrivals, the clients' retries, the slots.

The gateway queues nothing: a request takes a free slot or is answered 429, and the client
tries again `retry_after` later, `retries` times, then gives up. So a tick is served in steps
of `retry_after` (five of a 5 s tick): each step's arrivals and the retries due in it share
what the step can admit (`fluid_slots.py`), in proportion (whoever comes first takes a slot
that frees), and what is refused retries at the next step or, out of attempts, is shed. TTFT
is the steps waited plus the reference prefill; every attempt counts in the QPS the policy
sees, as `xpool_gateway_requests_total` counts 429s.

The tick's count is split over its steps with the burstiness of a step's arrivals (a
Dirichlet split whose variance gives a step the index of dispersion `1 + (I - 1) x
sqrt(step / tick)`, I the tick's): ServeGen's arrivals cluster below a tick, and a burst that
comes before the slots free is refused even when the tick as a whole has room. The square
root is an interpolation (a renewal process's index grows with the span from 1 towards its
asymptote; on ServeGen's fitted shapes, about as the span's power 0.3 to 0.5), calibrated
by bench/fluid_calibration.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from xpool.sim.fluid_slots import FluidSlots
from xpool.sim.results import TierResult, bin_of
from xpool.sim.service import Service


class FluidServer:
    """One model's interactive requests: those waiting to retry and those in its slots."""

    __slots__ = ("attainable", "prefill", "retries", "slo", "slots", "step", "tier", "waiting")

    def __init__(self, svc: Service, tier: TierResult, retries: int, retry_after: float) -> None:
        self.slots = FluidSlots(svc.reference_duration)
        self.tier = tier
        self.retries = retries
        self.step = retry_after
        self.prefill = svc.prefill(svc.reference_input)
        self.slo = svc.ttft_slo
        self.attainable = float(self.prefill <= svc.ttft_slo)
        self.waiting: list[list[float]] = []  # [arrived, requests, attempts so far]

    def serve(
        self,
        rng: random.Random | None,
        now: float,
        span: float,
        count: float,
        index: float,
        free: float,
        preempt: Callable[[float, float], float] | None = None,
    ) -> tuple[float, float]:
        """Serve `count` arrivals of the tick `[now, now + span)` (their counts' index of
        dispersion `index`; `rng` None: spread evenly) into `free` slots; `preempt(t, n)`
        frees up to `n` slots a batch holds (the gateway's rule: an interactive request that
        finds every slot full takes a batch request's). Returns the requests admitted and
        the retries made (attempts beyond each request's first)."""
        steps = max(1, round(span / self.step))
        step = span / steps
        parts = _split(rng, count, steps, index)
        admitted = retried = 0.0
        for j in range(steps):
            t = now + j * step
            if parts[j] > 0:
                self.waiting.append([t, parts[j], 0.0])
            demand = sum(w[1] for w in self.waiting)
            if demand <= 0:
                continue
            room = self.slots.capacity(t, step, free)
            if room < demand and preempt is not None:
                taken = preempt(t, demand - room)
                free += taken
                room += taken
            share = min(1.0, room / demand)
            still = []
            for entry in self.waiting:
                arrived, n, tries = entry
                if tries:
                    retried += n
                take = n * share
                if take > 0:
                    self._started(t - arrived, take)
                rest = n - take
                if rest <= 1e-12:
                    continue
                if tries < self.retries:
                    entry[1], entry[2] = rest, tries + 1
                    still.append(entry)
                else:
                    self._shed(rest)
            self.waiting = still
            admitted += demand * share
            self.slots.admit(t, step, demand * share)
        return admitted, retried

    def _started(self, wait: float, n: float) -> None:
        tier = self.tier
        ttft = wait + self.prefill
        tier.requests += n
        tier.attainable += n * self.attainable
        if ttft <= self.slo:
            tier.within_slo += n
        tier.ttft[bin_of(ttft)] += n

    def _shed(self, n: float) -> None:
        """`n` requests whose clients gave up: requests, misses, shed."""
        self.tier.requests += n
        self.tier.attainable += n * self.attainable
        self.tier.shed += n

    def queued(self) -> float:
        """Requests refused and still retrying."""
        return sum(w[1] for w in self.waiting)

    def finish(self, end: float) -> None:
        """Requests still retrying at `end`: those already past the SLO missed it; the others
        are left out (their outcome is unknown)."""
        for arrived, n, _ in self.waiting:
            if end - arrived > self.slo:
                self.tier.requests += n
                self.tier.attainable += n * self.attainable


def _split(rng: random.Random | None, count: float, steps: int, index: float) -> list[float]:
    """`count` over `steps` parts: evenly, or with a step's index of dispersion."""
    if steps == 1 or count <= 0:
        return [count] + [0.0] * (steps - 1)
    even = [count / steps] * steps
    if rng is None or index <= 0:  # no variability known: as smooth as the tick
        return even
    # per part: variance index_step x mean, of which the tick's own draw gives index / steps
    index_step = 1 + max(0.0, index - 1) * math.sqrt(1 / steps)
    extra = index_step - index / steps
    if extra <= 0:
        return even
    alpha = (count * (steps - 1) / (steps * extra) - 1) / steps
    if alpha <= 0:
        alpha = 1e-3  # clumped: nearly all in one step
    weights = [rng.gammavariate(alpha, 1.0) for _ in range(steps)]
    total = sum(weights)
    if total <= 0:
        return even
    return [count * w / total for w in weights]
