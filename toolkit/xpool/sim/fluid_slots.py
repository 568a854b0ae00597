"""Fluid mode's request slots: what a model's instances hold in flight, step to step.

An engine with continuous batching admits a request the moment a slot is free, and the request
holds that slot for its whole service time. A burst therefore fills the idle slots at once,
and a model whose requests outlast a tick (summary's reference request holds a slot 10 s, a
tick is 5 s) keeps them busy over several ticks. Serving each tick at the instances'
throughput instead (slots / service time per second) shed bursts the idle slots would
absorb: on ServeGen's day 1 that understated P1's attainment by 14 points against request
replay.

So each model keeps its admitted requests as chunks finishing at known times, every request
its reference request (duration `D`). In a step `[t, t + s)` over `S` slots:
- requests at least a step long: each slot takes one, the ones free at the step's start
  (from its middle, as arrivals spread over it) and those that free in it (as they free);
- shorter ones turn a slot over within the step: the free slot-seconds, over the part of a
  request that falls in the step (`min(D, s / 2)`, the rest spills into the next).
The requests in flight at a moment are what the gateway's counters and the exporters see.
"""

from __future__ import annotations

from collections import deque


class FluidSlots:
    """One model's requests in flight as chunks `[finish time, count]` in finish order (every
    chunk lasts `duration`)."""

    __slots__ = ("done", "duration", "held", "idle", "mark", "opening", "running")

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.running: deque[list[float]] = deque()
        self.held = 0.0  # requests in the chunks
        self.mark = 0.0  # slot-seconds are summed from here...
        self.done = 0.0  # ...those of the chunks finished since
        self.idle = 0.0  # the last step's slots free at its start...
        self.opening: list[tuple[float, float]] = []  # ...and (when, how many) freed in it

    def release(self, now: float) -> None:
        """The chunks finished by `now` free their slots."""
        running = self.running
        while running and running[0][0] <= now:
            finish, count = running.popleft()
            self.held -= count
            self.done += count * max(0.0, finish - max(finish - self.duration, self.mark))

    def start(self, now: float, dt: float, count: float) -> None:
        """`count` requests start in free slots in the step, from its middle on average."""
        if count <= 0:
            return
        if self.duration <= dt / 2:  # done within the step: only its slot-seconds remain
            self.done += count * self.duration
            return
        self.held += count
        self._insert([now + dt / 2 + self.duration, count])

    def capacity(self, now: float, dt: float, slots: float) -> float:
        """Requests the step `[now, now + dt)` can admit into `slots` slots."""
        self.release(now)
        running = self.running
        end = now + dt
        if self.duration < dt:  # slots turn over within the step: its free slot-seconds
            used = self.spill(now, dt)
            # a request started in the step holds a slot from its middle on, within the step
            return max(0.0, slots * dt - used) / min(self.duration, dt / 2)
        # each slot takes one request: the free ones, then those that free in the step
        self.idle = max(0.0, slots - self.held)
        opening = []
        for f, c in running:
            if f >= end:
                break
            opening.append((f, c))
        self.opening = opening
        return self.idle + sum(c for _, c in opening)

    def spill(self, now: float, dt: float) -> float:
        """Slot-seconds of the step `[now, now + dt)` that requests started before it hold."""
        end = now + dt
        return sum((min(finish, end) - now) * count for finish, count in self.running)

    def admit(self, now: float, dt: float, count: float) -> None:
        """`count` requests start in the step: in the free slots from its middle, then in
        those the step frees, each as it frees; each holds its slot `duration`."""
        if count <= 0:
            return
        if self.duration < dt:
            self.start(now, dt, count)
            return
        self.held += count
        chunks = []
        first = min(count, self.idle)
        if first > 0:
            chunks.append([now + dt / 2 + self.duration, first])
        rest = count - first
        for freed, n in self.opening:
            if rest <= 0:
                break
            take = min(n, rest)
            chunks.append([freed + self.duration, take])
            rest -= take
        if rest > 1e-12:  # more than the slots (a preempted batch's): from the middle
            chunks.append([now + dt / 2 + self.duration, rest])
        for chunk in sorted(chunks):
            self._insert(chunk)

    def _insert(self, chunk: list[float]) -> None:
        """Keep `running` in finish order (a chunk started at a freed slot can finish before
        one started at the step's middle)."""
        running = self.running
        i = len(running)
        while i > 0 and running[i - 1][0] > chunk[0]:
            i -= 1
        if i == len(running):
            running.append(chunk)
        else:
            running.insert(i, chunk)

    def busy_seconds(self, end: float) -> float:
        """Slot-seconds held from the last call (or the start) to `end`; the sum starts
        again at `end`."""
        used = self.done + self._held_seconds(self.mark, end)
        self.mark, self.done = end, 0.0
        return used

    def held_between(self, start: float, end: float) -> float:
        """Requests in flight on average over `[start, end)` among those not yet released."""
        return self._held_seconds(start, end) / (end - start)

    def _held_seconds(self, start: float, end: float) -> float:
        """Slot-seconds the chunks not yet released hold within `[start, end)`."""
        used = 0.0
        for finish, count in self.running:
            overlap = min(finish, end) - max(finish - self.duration, start)
            if overlap > 0:
                used += overlap * count
        return used

    def at(self, t: float) -> float:
        """Requests in flight at `t`."""
        return sum(c for f, c in self.running if f - self.duration <= t < f)
