"""Fluid mode's gateway for one model: arrivals per step, the clients' retries, the slots.

The gateway queues nothing: a request takes a free slot or is answered 429, and the client
tries again `retry_after` later, `retries` times, then gives up. Fluid mode moves in steps of
about a second (five to a 5 s tick): each step's arrivals and the retries due in it share what
the step can admit (`fluid_slots.py`), in proportion (whoever comes first takes a slot that
frees), and what is refused retries `retry_after` later or, out of attempts, is shed. TTFT is
the time waited plus the reference prefill; every attempt counts in the QPS the policy sees,
as `xpool_gateway_requests_total` counts 429s.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

from xpool.policy.queueing import erlang_b
from xpool.sim.fluid_slots import FluidSlots
from xpool.sim.results import TierResult, bin_of
from xpool.sim.service import Service


class FluidServer:
    """One model's interactive requests: those waiting to retry and those in its slots."""

    __slots__ = (
        "attainable",
        "last",
        "outcomes",
        "prefill",
        "retries",
        "retry_steps",
        "short",
        "slo",
        "slots",
        "step",
        "tier",
        "waiting",
    )

    def __init__(
        self,
        svc: Service,
        tier: TierResult,
        retries: int,
        retry_after: float,
        step: float,
        drawn: bool = False,
    ) -> None:
        """`drawn`: the arrivals are counts of a random process (ServeGen's, a trace's), so
        within a step they come at random; else evenly (a rate spread over the steps)."""
        self.slots = FluidSlots(svc.reference_duration)
        self.tier = tier
        self.retries = retries
        self.step = step
        self.retry_steps = max(1, round(retry_after / step))
        self.prefill = svc.prefill(svc.reference_input)
        self.slo = svc.ttft_slo
        self.attainable = float(self.prefill <= svc.ttft_slo)
        self.outcomes: dict[float, tuple[bool, int]] = {}  # wait -> (within the SLO, bin)
        self.waiting: list[list[float]] = []  # [arrived, requests, attempts so far, due]
        # a slot turns over within a step, and the step's arrivals come at random in it
        self.short = drawn and svc.reference_duration < step
        self.last = 0.0  # requests admitted in the last step

    def serve(
        self,
        now: float,
        arrivals: Sequence[float],
        free: float,
        preempt: Callable[[float, float], float] | None = None,
    ) -> tuple[float, float]:
        """Serve the steps from `now`, `arrivals[j]` arriving in step j, into `free` slots;
        `preempt(t, n)` frees up to `n` slots a batch holds (the gateway's rule: an
        interactive request that finds every slot full takes a batch request's). Returns the
        requests admitted and the retries made (attempts beyond each request's first)."""
        step = self.step
        if not self.waiting:  # the common case: nobody retrying, and room for the tick
            total = sum(arrivals)
            if total <= 0:
                self.last = 0.0
                return 0.0, 0.0
            self.slots.release(now)
            room = free - self.slots.held
            if total <= room and (
                not self.short or self._refused(free, max(arrivals), now) < 1e-4
            ):  # every step finds a free slot for each
                for j, count in enumerate(arrivals):
                    self.slots.start(now + j * step, step, count)
                self.last = arrivals[-1]
                self._started(0.0, total)
                return total, 0.0
        admitted = retried = 0.0
        for j, count in enumerate(arrivals):
            t = now + j * step
            if count > 0:
                self.waiting.append([t, count, 0.0, t])
            if not self.waiting:
                self.last = 0.0
                continue
            due = [w for w in self.waiting if w[3] <= t + 1e-9]
            demand = sum(w[1] for w in due)
            room = self.slots.capacity(t, step, free)
            if self.short:  # arrivals that find every slot busy within the step
                room = min(room, demand * (1 - self._refused(free, demand, t)))
            if room < demand and preempt is not None:
                taken = preempt(t, demand - room)
                free += taken
                room += taken
            share = min(1.0, room / demand) if demand > 0 else 0.0
            for entry in due:
                arrived, n, tries, _ = entry
                if tries:
                    retried += n
                take = n * share
                if take > 0:
                    self._started(t - arrived, take)
                entry[1] = n - take
                if entry[1] <= 1e-12:
                    continue
                if tries < self.retries:
                    entry[2], entry[3] = tries + 1, t + self.retry_steps * step
                else:
                    self._shed(entry[1])
                    entry[1] = 0.0
            self.waiting = [w for w in self.waiting if w[1] > 1e-12]
            self.last = demand * share
            admitted += self.last
            self.slots.admit(t, step, self.last)
        return admitted, retried

    def _refused(self, slots: float, arrivals: float, t: float) -> float:
        """The share of the step's `arrivals` (short requests) that find all `slots` busy:
        Erlang's loss formula (no queue, as the gateway; insensitive to the service time's
        distribution) for the step's slot-seconds in Erlangs, those the requests started
        before it still hold included, the arrivals taken as Poisson within the step (their
        count already carries the burstiness between steps)."""
        step = self.step
        load = arrivals * self.slots.duration
        if self.slots.running:  # requests that outlast half a step spill into the next
            load += self.slots.spill(t, step)
        load /= step
        return _loss(max(0, math.floor(slots)), math.ceil(load * 4) / 4)

    def in_flight(self, t: float) -> float:
        """Requests in flight at `t`, as the gateway counts them: those the slots hold, or
        for requests shorter than a step (finished within it), the last step's at Little's
        law."""
        held = self.slots.at(t)
        d = self.slots.duration
        if d >= self.step:
            return held
        return max(held, self.last / self.step * d)

    def _started(self, wait: float, n: float) -> None:
        tier = self.tier
        tier.requests += n
        tier.attainable += n * self.attainable
        known = self.outcomes.get(wait)  # waits are whole steps: a few values
        if known is None:
            ttft = wait + self.prefill
            known = self.outcomes[wait] = (ttft <= self.slo, bin_of(ttft))
        if known[0]:
            tier.within_slo += n
        tier.ttft[known[1]] += n

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
        for arrived, n, _, _ in self.waiting:
            if end - arrived > self.slo:
                self.tier.requests += n
                self.tier.attainable += n * self.attainable


@functools.lru_cache(maxsize=65_536)
def _loss(slots: int, load: float) -> float:
    return erlang_b(slots, load) if slots > 0 else 1.0


def spread(count: float, steps: int) -> list[float]:
    """A tick's `count` over its `steps` evenly (a load known only by its rates)."""
    return [count / steps] * steps if steps > 0 else []
