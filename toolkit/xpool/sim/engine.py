"""The discrete-event simulator: pools, instances, queues, and a policy that observes and acts.

Two service modes share the world (instances, accounting, the policy's passes):

- `requests` (request traces): every request is an event. A model's requests wait in one FIFO
  queue (the gateway's) and take a free slot of the ready instance with the fewest requests
  in flight; TTFT = queue wait + prefill, end-to-end = TTFT + output tokens x per-token decode
  time (`service.py`). A request still queued after `queue_timeout` is shed.
- `fluid` (rate traces such as ServeGen, whose 14 days hold billions of requests): time moves
  in fixed ticks; each tick's arrivals (rate x tick, or a seeded Poisson draw) join a FIFO of
  arrival chunks, and the model's ready instances serve `slots / reference duration` requests
  per second each, oldest chunk first. A chunk's TTFT is the time from its tick to the tick it
  is served plus the reference prefill, so attainment is arrival-weighted over chunks. This is
  a fluid approximation: it has no per-request variance (every request is the plan's reference
  request), serves within a tick without queueing, and resolves waits only to one tick, so it
  is optimistic for short SLOs and bursty traffic within a tick.

A batch backlog (`Options.batches`, fluid mode) takes the request slots interactive requests
leave free, at the lowest priority (`backlog.py`; `_batch_tick`); a drain re-queues it.

Every pass the policy sees what the live reconciler sees: instance states (live, from
Xinference), requests in flight per instance (the gateway's, queued requests spread over the
ready instances), QPS and prompt and completion tokens/s as arrivals over `window` seconds
ending `lag` seconds ago (Prometheus `rate(...[1m])` behind one scrape; tokens count at the
request's arrival, where the gateway counts them at its answer), and utilisation as the busy
share of the model's accelerators since the last pass, and the queued batch (requests and
tokens, the gateway's gauges). Launches load for `cold_start` seconds; draining instances
stop taking requests and are terminated by the policy once idle (fluid: at the next pass) or
at `drainTimeout`, which kills what is still in flight (counted as shed).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from xpool.policy.actions import Action, Drain, Launch, Terminate
from xpool.policy.spec import PolicySpec
from xpool.policy.state import InstanceObs, LoadObs, Observation
from xpool.sim.backlog import BatchJob, BatchQueue
from xpool.sim.baselines import Controller
from xpool.sim.dispersion import ArrivalCounts
from xpool.sim.load import RateLoad, RequestLoad
from xpool.sim.results import PolicyResult, Sample, TierResult, bin_of
from xpool.sim.service import Service


@dataclass(frozen=True)
class Options:
    cold_start: float = 60.0  # seconds from launch to ready
    window: float = 60.0  # QPS rate window
    lag: float = 15.0  # scrape lag of the QPS the policy sees
    queue_timeout: float = 60.0  # a request queued longer is shed
    tick: float = 5.0  # fluid mode: seconds per tick
    poisson: bool = False  # fluid mode: seeded Poisson arrivals instead of rate x tick
    seed: int = 0
    batches: tuple[BatchJob, ...] = ()  # fluid mode: a backlog served in idle slots (backlog.py)
    batch_reserve: int = 1  # slots per instance a batch never takes


@dataclass
class _Instance:
    uid: str
    model: str
    version: str
    state: str  # loading | ready | draining
    since: float
    busy: int = 0
    inflight: dict[int, bool] = field(default_factory=dict)  # request seq -> within SLO


class _World:
    """Instances, their accounting, and the application of the policy's actions."""

    def __init__(
        self,
        spec: PolicySpec,
        services: Mapping[str, Service],
        controller: Controller,
        options: Options,
        result: PolicyResult,
    ) -> None:
        self.spec = spec
        self.services = services
        self.controller = controller
        self.options = options
        self.result = result
        self.instances: dict[str, _Instance] = {}
        self.ready: dict[str, list[_Instance]] = {m: [] for m in services}
        self.counter = 0
        self.loading: list[tuple[float, int, str]] = []  # (ready at, seq, uid)
        self.last = 0.0
        # Accelerators held / busy per model, and their integrals since the start and the
        # last pass; `work` is slot-seconds of arrivals since the last sample.
        self.held_w = dict.fromkeys(services, 0.0)
        self.busy_w = dict.fromkeys(services, 0.0)
        self.held_area = dict.fromkeys(services, 0.0)
        self.busy_area = dict.fromkeys(services, 0.0)
        self.pass_held = dict.fromkeys(services, 0.0)
        self.pass_busy = dict.fromkeys(services, 0.0)
        self.work = dict.fromkeys(services, 0.0)
        # per second of arrival: [second, requests, prompt tokens, completion tokens]
        self.arrivals: dict[str, deque[list[float]]] = {m: deque() for m in services}
        # 30 s arrival counts for the variability `autoscaling.mode: slo` reads (dispersion.py)
        slo = spec.scaling.mode == "slo"
        self.counts = {m: ArrivalCounts() for m in services} if slo else {}
        self.batch: BatchQueue | None = None
        if options.batches:  # served in fluid mode only (run_fluid's `_batch_tick`)
            per_slot = {m: s.accelerators / s.slots for m, s in services.items()}
            self.batch = BatchQueue(options.batches, per_slot, options.batch_reserve)
            self.batch.submit_due(0.0)
        for tier in {s.tier for s in services.values()}:
            result.tiers.setdefault(tier, TierResult())

    # accounting
    def advance(self, now: float) -> None:
        dt = now - self.last
        if dt > 0:
            for m in self.services:
                h, b = self.held_w[m] * dt, self.busy_w[m] * dt
                self.held_area[m] += h
                self.busy_area[m] += b
                self.pass_held[m] += h
                self.pass_busy[m] += b
            self.last = now

    def arrived(
        self, model: str, now: float, count: float, work: float, tokens: tuple[float, float]
    ) -> None:
        """`count` requests of `tokens` (prompt, completion) in all, `work` slot-seconds."""
        buckets = self.arrivals[model]
        second = math.floor(now)
        if buckets and buckets[-1][0] == second:
            last = buckets[-1]
            last[1] += count
            last[2] += tokens[0]
            last[3] += tokens[1]
        else:
            buckets.append([second, count, *tokens])
        self.work[model] += work
        if self.counts:
            self.counts[model].add(now, count)

    def observed(self, model: str, now: float) -> LoadObs:
        """QPS and tokens/s as the gateway's counters show them through Prometheus."""
        o = self.options
        hi, lo = now - o.lag, now - o.lag - o.window
        buckets = self.arrivals[model]
        while buckets and buckets[0][0] < lo:
            buckets.popleft()
        seen = [b for b in buckets if b[0] < hi]
        qps, prompt, completion = (sum(b[k] for b in seen) / o.window for k in (1, 2, 3))
        cv2 = self.counts[model].cv2(hi) if self.counts else None
        return LoadObs(
            qps=qps,
            prompt_tokens_per_s=prompt,
            completion_tokens_per_s=completion,
            arrival_cv2=cv2,
        )

    # instances
    def launch(self, model: str, version: str, now: float, ready: bool) -> _Instance:
        self.counter += 1
        inst = _Instance(f"{model}--{version}--{self.counter}", model, version, "loading", now)
        self.instances[inst.uid] = inst
        self.held_w[model] += self.services[model].accelerators
        if ready:
            self.make_ready(inst, now)
        else:
            heapq.heappush(self.loading, (now + self.options.cold_start, self.counter, inst.uid))
        return inst

    def make_ready(self, inst: _Instance, now: float) -> None:
        inst.state, inst.since = "ready", now
        self.ready[inst.model].append(inst)

    def due_ready(self, now: float) -> list[_Instance]:
        out = []
        while self.loading and self.loading[0][0] <= now:
            _, _, uid = heapq.heappop(self.loading)
            inst = self.instances.get(uid)
            if inst is not None and inst.state == "loading":
                self.make_ready(inst, now)
                out.append(inst)
        return out

    def apply(self, action: Action, now: float) -> None:
        if isinstance(action, Launch):
            for _ in range(action.count):
                self.launch(action.model, action.version, now, ready=False)
            self.result.scale_ups += action.count
        elif isinstance(action, Drain):
            inst = self.instances.get(action.uid)
            if inst is None or inst.state == "draining":
                return
            if inst.state == "ready":
                self.ready[inst.model].remove(inst)
            inst.state, inst.since = "draining", now
            if self.batch is not None:
                self.batch.requeue(inst.uid, now)
            if action.reclaimed_for is not None:
                self.result.preemptions += 1
                taken = self.result.reclaimed.setdefault(action.tier, {})
                taken[action.reclaimed_for] = taken.get(action.reclaimed_for, 0) + 1
            else:
                self.result.scale_downs += 1
        elif isinstance(action, Terminate):
            inst = self.instances.pop(action.uid, None)
            if inst is None:
                return
            if inst.state == "ready":
                self.ready[inst.model].remove(inst)
            svc = self.services[inst.model]
            tier = self.result.tiers[svc.tier]
            for ok in inst.inflight.values():
                tier.shed += 1
                tier.within_slo -= ok
            self.busy_w[inst.model] -= inst.busy / svc.slots * svc.accelerators
            self.held_w[inst.model] -= svc.accelerators

    def observe(self, now: float, queued: Mapping[str, float]) -> Observation:
        insts = []
        for inst in self.instances.values():
            extra = 0.0
            if inst.state == "ready":
                extra = queued.get(inst.model, 0.0) / len(self.ready[inst.model])
            insts.append(
                InstanceObs(
                    inst.uid,
                    inst.model,
                    inst.version,
                    inst.state,  # type: ignore[arg-type]
                    inst.since,
                    math.ceil(inst.busy + extra + self.batch_held(inst.uid)),
                )
            )
        load = {}
        for m in self.services:
            held = self.pass_held[m]
            util = self.pass_busy[m] / held if held else None
            load[m] = replace(self.observed(m, now), utilization=util, **self.batch_queued(m))
            self.pass_held[m] = self.pass_busy[m] = 0.0
        return Observation(now, tuple(insts), load)

    def batch_held(self, uid: str) -> float:
        return 0.0 if self.batch is None else self.batch.held_on(uid)

    def batch_queued(self, model: str) -> dict[str, float]:
        """The queued batch as the gateway's gauges show it; nothing without a batch."""
        if self.batch is None:
            return {}
        requests, tokens = self.batch.queued(model)
        return {"batch_queued_requests": requests, "batch_queued_tokens": tokens}

    def reconcile(self, now: float, queued: Mapping[str, float], since: float) -> None:
        self.advance(now)
        self.sample(now, since)
        for action in self.controller.step(self.observe(now, queued)):
            self.apply(action, now)

    def sample(self, now: float, since: float) -> None:
        span = now - since
        if span <= 0:
            return
        demand: dict[str, float] = {}
        held: dict[str, float] = {}
        busy = total = 0.0
        for m, svc in self.services.items():
            demand[svc.tier] = (
                demand.get(svc.tier, 0.0) + self.work[m] / span / svc.slots * svc.accelerators
            )
            held[svc.tier] = held.get(svc.tier, 0.0) + self.held_w[m]
            busy += self.pass_busy[m]
            total += self.pass_held[m]
            self.work[m] = 0.0
        self.result.samples.append(Sample(now, demand, held, busy / total if total else None))

    def finish(self, now: float) -> None:
        self.advance(now)
        self.result.accelerator_seconds = sum(self.held_area.values())
        self.result.busy_accelerator_seconds = sum(self.busy_area.values())
        pools = {m.pool for m in self.spec.models}
        owned = sum(p.accelerators for p in self.spec.pools if p.name in pools)
        self.result.owned_accelerator_seconds = owned * now  # policy_comparison.owned
        if self.batch is not None:
            self.batch.result.end = now
            self.result.batch = self.batch.result


def _warm(world: _World, initial: Mapping[str, int]) -> None:
    for model in world.spec.models:
        for _ in range(initial.get(model.name, 0)):
            world.launch(model.name, model.version, 0.0, ready=True)


def run_requests(
    spec: PolicySpec,
    services: Mapping[str, Service],
    load: RequestLoad,
    controller: Controller,
    initial: Mapping[str, int],
    options: Options,
) -> PolicyResult:
    """Replay every request of `load` against `controller`'s decisions."""
    started = time.perf_counter()
    result = PolicyResult(controller.name, load.end)
    world = _World(spec, services, controller, options, result)
    _warm(world, initial)
    replay = _RequestReplay(world, controller)
    queues = replay.queues
    for r in load.requests():
        if r.t >= load.end:
            break
        svc = services.get(r.model)
        if svc is None:
            continue
        replay.passes_until(r.t)
        replay.to_time(r.t)
        world.advance(r.t)
        world.arrived(
            r.model,
            r.t,
            1,
            svc.duration(r.input_tokens, r.output_tokens),
            (r.input_tokens, r.output_tokens if svc.reference_output else 0),
        )
        ready = world.ready[r.model]
        queue = queues[r.model]
        best = min(ready, key=lambda i: i.busy) if ready else None
        if best is not None and best.busy < svc.slots and not queue:
            replay.start(best, r.t, r.t, r.input_tokens, r.output_tokens)
        else:
            queue.append((r.t, r.input_tokens, r.output_tokens))
    replay.passes_until(load.end)
    replay.to_time(load.end)
    replay.count_waiting(load.end)
    world.finish(load.end)
    result.wall_seconds = time.perf_counter() - started
    return result


class _RequestReplay:
    """Request mode's state beside the world: each model's FIFO queue (the gateway's), the
    completions of the requests in flight, and when the policy passes.

    Every request goes through `start` and every completion through `to_time`, so these are
    the simulator's hot path: they bind what they use to locals once per call.
    """

    __slots__ = ("controller", "done", "last_pass", "next_pass", "queues", "seq", "world")

    def __init__(self, world: _World, controller: Controller) -> None:
        self.world = world
        self.controller = controller
        self.queues: dict[str, deque[tuple[float, int, int]]] = {
            m: deque() for m in world.services
        }  # (arrived, input tokens, output tokens)
        self.done: list[tuple[float, int, str]] = []  # (finish time, seq, uid)
        self.seq = 0
        self.next_pass = 0.0
        self.last_pass = 0.0

    def start(
        self, inst: _Instance, now: float, arrived: float, tokens_in: int, tokens_out: int
    ) -> None:
        """`inst` takes a request that arrived at `arrived`: its TTFT is known now."""
        world = self.world
        svc = world.services[inst.model]
        wait = now - arrived
        ttft = wait + svc.prefill(tokens_in)
        ok = ttft <= svc.ttft_slo
        tier = world.result.tiers[svc.tier]
        tier.requests += 1
        tier.attainable += svc.prefill(tokens_in) <= svc.ttft_slo
        tier.within_slo += ok
        tier.ttft[bin_of(ttft)] += 1
        self.seq = seq = self.seq + 1
        inst.inflight[seq] = ok
        inst.busy += 1
        world.busy_w[inst.model] += svc.accelerators / svc.slots
        heapq.heappush(self.done, (now + svc.duration(tokens_in, tokens_out), seq, inst.uid))

    def shed(self, model: str, tokens_in: int) -> None:
        """A request waited longer than `queue_timeout`: counted, never served."""
        svc = self.world.services[model]
        tier = self.world.result.tiers[svc.tier]
        tier.requests += 1
        tier.shed += 1
        tier.attainable += svc.prefill(tokens_in) <= svc.ttft_slo

    def pull(self, inst: _Instance, now: float) -> None:
        """`inst` takes queued requests while it has free slots (shedding the timed-out)."""
        queue = self.queues[inst.model]
        slots = self.world.services[inst.model].slots
        timeout = self.world.options.queue_timeout
        while queue and inst.busy < slots:
            arrived, tokens_in, tokens_out = queue.popleft()
            if now - arrived > timeout:
                self.shed(inst.model, tokens_in)
            else:
                self.start(inst, now, arrived, tokens_in, tokens_out)

    def purge(self, now: float) -> None:
        timeout = self.world.options.queue_timeout
        for model, queue in self.queues.items():
            while queue and now - queue[0][0] > timeout:
                self.shed(model, queue.popleft()[1])

    def to_time(self, now: float) -> None:
        """Completions and instances becoming ready up to `now`, in time order."""
        world, done, loading = self.world, self.done, self.world.loading
        services, busy_w = world.services, world.busy_w
        while True:
            t_done = done[0][0] if done else math.inf
            t_ready = loading[0][0] if loading else math.inf
            t = min(t_done, t_ready)
            if t > now:
                return
            world.advance(t)
            if t_done <= t_ready:
                _, key, uid = heapq.heappop(done)
                inst = world.instances.get(uid)
                if inst is None or key not in inst.inflight:
                    continue
                del inst.inflight[key]
                inst.busy -= 1
                svc = services[inst.model]
                busy_w[inst.model] -= svc.accelerators / svc.slots
                if inst.state == "ready":
                    self.pull(inst, t)
            else:
                for inst in world.due_ready(t):
                    self.pull(inst, t)

    def passes_until(self, now: float) -> None:
        """Every policy pass due by `now`, each seeing the world as it was at its time."""
        while self.next_pass <= now:
            at = self.next_pass
            self.to_time(at)
            self.purge(at)
            self.world.reconcile(at, {m: len(q) for m, q in self.queues.items()}, self.last_pass)
            for m, q in self.queues.items():
                for inst in list(self.world.ready[m]) if q else ():
                    self.pull(inst, at)
            self.last_pass = at
            self.next_pass += self.controller.interval

    def count_waiting(self, end: float) -> None:
        """Requests still queued at `end`: those already past the SLO missed it; the others
        are left out (their outcome is unknown)."""
        for model, queue in self.queues.items():
            svc = self.world.services[model]
            tier = self.world.result.tiers[svc.tier]
            for arrived, tokens_in, _ in queue:
                if end - arrived > svc.ttft_slo:
                    tier.requests += 1
                    tier.attainable += svc.prefill(tokens_in) <= svc.ttft_slo


def run_fluid(
    spec: PolicySpec,
    services: Mapping[str, Service],
    load: RateLoad,
    controller: Controller,
    initial: Mapping[str, int],
    options: Options,
) -> PolicyResult:
    """Serve `load`'s arrival rates as fluid queues, one tick at a time."""
    started = time.perf_counter()
    result = PolicyResult(controller.name, load.end)
    world = _World(spec, services, controller, options, result)
    _warm(world, initial)
    occupancy = dict.fromkeys(services, 0.0)  # slots the interactive requests kept busy
    rng = random.Random(options.seed)
    dt = options.tick
    queues: dict[str, deque[list[float]]] = {m: deque() for m in services}  # [arrived, count]
    queued = dict.fromkeys(services, 0.0)
    steps = {m: list(load.series.get(m, ())) for m in services}
    cursor = dict.fromkeys(services, 0)
    served_rate = dict.fromkeys(services, 0.0)
    per_instance = {m: s.slots / s.reference_duration for m, s in services.items()}
    prefill = {m: s.prefill(s.reference_input) for m, s in services.items()}
    tiers = {m: result.tiers[s.tier] for m, s in services.items()}
    attainable = {m: float(prefill[m] <= s.ttft_slo) for m, s in services.items()}
    next_pass = 0.0
    last_pass = 0.0
    ticks = math.ceil(load.end / dt)
    for k in range(ticks):
        now = k * dt
        span = min(dt, load.end - now)
        if now >= next_pass:
            world.reconcile(
                now,
                {m: queued[m] + served_rate[m] * services[m].reference_duration for m in services},
                last_pass,
            )
            for inst in [i for i in world.instances.values() if i.state == "draining"]:
                inst.busy = 0  # a drained instance finishes its batch within the next pass
            last_pass = now
            next_pass += controller.interval
        world.due_ready(now)
        for m, svc in services.items():
            series, i = steps[m], cursor[m]
            while i + 1 < len(series) and series[i + 1][0] <= now:
                i += 1
            cursor[m] = i
            rate = series[i][1] if series and series[i][0] <= now else 0.0
            expected = rate * span
            count = _poisson(rng, expected) if options.poisson else expected
            queue = queues[m]
            tier = tiers[m]
            if count > 0:
                queue.append([now, count])
                queued[m] += count
                tokens = (count * svc.reference_input, count * svc.reference_output)
                world.arrived(m, now, count, count * svc.reference_duration, tokens)
            batch_slots = sum(world.batch_held(i.uid) for i in world.ready[m])
            capacity = (len(world.ready[m]) - batch_slots / svc.slots) * per_instance[m] * span
            served = 0.0
            slo, ttft0 = svc.ttft_slo, prefill[m]
            while queue and served < capacity:
                arrived, n = queue[0]
                wait = now - arrived
                if wait > options.queue_timeout:
                    queue.popleft()
                    tier.requests += n
                    tier.attainable += n * attainable[m]
                    tier.shed += n
                    queued[m] -= n
                    continue
                take = min(n, capacity - served)
                ttft = wait + ttft0
                tier.requests += take
                tier.attainable += take * attainable[m]
                if ttft <= slo:
                    tier.within_slo += take
                tier.ttft[bin_of(ttft)] += take
                served += take
                queued[m] -= take
                if take >= n:
                    queue.popleft()
                else:
                    queue[0][1] = n - take
            while queue and now - queue[0][0] > options.queue_timeout:
                arrived, n = queue.popleft()
                tier.requests += n
                tier.attainable += n * attainable[m]
                tier.shed += n
                queued[m] -= n
            served_rate[m] = served / span if span else 0.0
            occupancy[m] = served * svc.reference_duration / span
            world.busy_w[m] = occupancy[m] / svc.slots * svc.accelerators
        _batch_tick(world, now, span, occupancy, queued)
        world.advance(now + span)
    end = load.end
    for m, queue in queues.items():
        for arrived, n in queue:
            if end - arrived > services[m].ttft_slo:
                tiers[m].requests += n
                tiers[m].attainable += n * attainable[m]
    world.finish(end)
    result.wall_seconds = time.perf_counter() - started
    return result


def _batch_tick(
    world: _World,
    now: float,
    span: float,
    occupancy: Mapping[str, float],
    queued: Mapping[str, float],
) -> None:
    """The backlog takes the slots the tick's interactive requests left free (none while
    they queue) and serves until the tick's end; its busy slots join each model's; then
    the batches due by the next tick are submitted."""
    batch = world.batch
    if batch is None:
        return
    waiting = {m: queued[m] > 1e-9 for m in world.services}
    held = {}
    for m, svc in world.services.items():
        ready = world.ready[m]
        if batch.has_work(m) and ready and not waiting[m]:
            interactive = occupancy[m] / len(ready)
            for inst in ready:
                batch.dispatch(m, inst.uid, batch.slots(inst.uid, svc.slots, interactive), now)
        held[m] = sum(batch.held_on(i.uid) for i in ready)
    idle = batch.run(now + span, {m: not w for m, w in waiting.items()})
    for m, svc in world.services.items():
        busy = (held[m] * span - idle.get(m, 0.0)) / span
        world.busy_w[m] += busy / svc.slots * svc.accelerators
    batch.submit_due(now + span)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's product method for small means, a rounded normal above 30."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
