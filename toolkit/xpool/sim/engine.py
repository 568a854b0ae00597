"""The discrete-event simulator: pools, instances, admission, and a policy that observes and acts.

Two service modes share the world (instances, accounting, the policy's passes):

- `requests` (request traces): every request is an event. The gateway queues nothing (as
  `gateway/routing.py` does): a request takes a slot of the ready instance with the fewest
  requests in flight below its request limit (`context.batch`), or is answered 429 with
  Retry-After, and the client tries again `retry_after` later, at most `retries` times (the
  OpenAI client's default of 2, honouring Retry-After), then gives up (shed). TTFT counts
  from the first attempt; end-to-end = TTFT + output tokens x per-token decode time
  (`service.py`). A prompt longer than the model's `seqLen` is refused (too long).
- `fluid` (rate traces such as ServeGen, whose 14 days hold billions of requests): time moves
  in fixed ticks of steps of about a second. Each step's arrivals are the load's counts
  (ServeGen's drawn by its own generator, `servegen_counts.py`; a request trace's counted),
  or its rates spread evenly (`variability` off, or a Poisson draw per tick), served by
  `fluid_serve.FluidServer`: the model's request slots (`fluid_slots.FluidSlots`) hold
  admitted requests for the reference duration, a step admits into the slots free or
  freeing in it, and what it refuses retries `retry_after` later, at most `retries` times,
  then is shed. Every request is the plan's reference request; TTFT is the time waited plus
  the reference prefill (docs/simulation.md, "Fluid vs requests").

A batch backlog (`Options.batches`, fluid mode) takes the request slots interactive requests
leave free, at the lowest priority (`backlog.py`; `_batch_tick`); a drain re-queues it.

Every pass the policy sees what the live reconciler sees: instance states (live, from
Xinference), requests in flight per instance (the gateway's), QPS (every attempt, 429s
included, as `xpool_gateway_requests_total` counts them) and prompt and completion tokens/s
as arrivals over `window` seconds ending `lag` seconds ago (Prometheus `rate(...[1m])` behind
one scrape; tokens count at the request's arrival, where the gateway counts them at its
answer), the utilisation of the model's pool as the accelerator exporters report it:
accelerators whose instance has a request in flight over all the pool's accelerators, since
the last pass, and the queued batch (requests and tokens, the gateway's gauges). Launches
load for the model's cold start (`Service.cold_start`, or a fixed `cold_start`); draining
instances stop taking requests and are terminated by the policy once idle (fluid: at the next
pass) or at `drainTimeout`: the requests a Terminate kills are sent again from the start
(counted as requeued; their first answers count as late).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from xpool.policy.actions import Action, Drain, Launch, Terminate
from xpool.policy.admission import admit
from xpool.policy.spec import PolicySpec
from xpool.policy.state import InstanceObs, LoadObs, Observation
from xpool.sim.backlog import BatchJob, BatchQueue
from xpool.sim.baselines import Controller
from xpool.sim.dispersion import ArrivalCounts
from xpool.sim.fluid_serve import FluidServer, spread
from xpool.sim.load import RateCursor, RateLoad, RequestLoad
from xpool.sim.results import PolicyResult, Sample, TierResult, bin_of
from xpool.sim.service import Service


@dataclass(frozen=True)
class Options:
    cold_start: float | None = None  # seconds from launch to ready; None: each model's own
    window: float = 60.0  # QPS rate window
    lag: float = 15.0  # scrape lag of the QPS the policy sees
    retries: int = 2  # a client retries a 429 this many times (OpenAI's client: 2)...
    retry_after: float = 1.0  # ...after the gateway's Retry-After (1 s)
    # the gateway's global limit (`gateway.maxInflight`) and `tierHeadroom`: priority
    # admission sheds the lower tiers first (`policy/admission.py`); None: no global limit
    gateway_limit: int | None = None
    tier_headroom: float = 0.15
    tick: float = 5.0  # fluid mode: seconds per tick
    poisson: bool = False  # fluid mode: seeded Poisson arrivals instead of rate x tick
    variability: bool = True  # fluid mode: the load's own arrival counts, not its rates
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
    # request seq -> (within SLO, input tokens, output tokens)
    inflight: dict[int, tuple[bool, int, int]] = field(default_factory=dict)


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
        # Accelerators of instances with a request in flight (what the exporters see busy),
        # and their integrals since the start and the last pass.
        self.active_w = dict.fromkeys(services, 0.0)
        self.active_area = dict.fromkeys(services, 0.0)
        self.pass_active = dict.fromkeys(services, 0.0)
        self.pass_started = 0.0
        self.pool_size = {p.name: p.accelerators for p in spec.pools}
        # requests killed by a Terminate, to be served again: (model, input, output tokens)
        self.lost: list[tuple[str, int, int]] = []
        # requests in flight per tier, for the gateway's priority admission
        self.rank = {t.name: i for i, t in enumerate(spec.tiers)}
        self.inflight_by_tier = dict.fromkeys(self.rank, 0)
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
                a = self.active_w[m] * dt
                self.active_area[m] += a
                self.pass_active[m] += a
            self.last = now

    def add_busy(self, model: str, seconds: float) -> None:
        """Busy accelerator-seconds counted apart from `busy_w` (fluid mode's slots)."""
        self.busy_area[model] += seconds
        self.pass_busy[model] += seconds

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

    def observed(self, model: str, now: float, utilization: float | None = None) -> LoadObs:
        """QPS and tokens/s as the gateway's counters show them through Prometheus."""
        o = self.options
        hi, lo = now - o.lag, now - o.lag - o.window
        buckets = self.arrivals[model]
        while buckets and buckets[0][0] < lo:
            buckets.popleft()
        qps = prompt = completion = 0.0
        for second, count, tokens_in, tokens_out in buckets:
            if second >= hi:
                break
            qps += count
            prompt += tokens_in
            completion += tokens_out
        w = o.window
        return LoadObs(
            qps=qps / w,
            utilization=utilization,
            prompt_tokens_per_s=prompt / w,
            completion_tokens_per_s=completion / w,
            arrival_cv2=self.counts[model].cv2(hi) if self.counts else None,
            **self.batch_queued(model),
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
            cold = self.options.cold_start
            if cold is None:
                cold = self.services[model].cold_start
            heapq.heappush(self.loading, (now + cold, self.counter, inst.uid))
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
            self.inflight_by_tier[svc.tier] -= len(inst.inflight)
            for ok, tokens_in, tokens_out in inst.inflight.values():
                tier.requeued += 1
                tier.within_slo -= ok
                self.lost.append((inst.model, tokens_in, tokens_out))
            if inst.busy > 0:
                self.active_w[inst.model] -= svc.accelerators
            self.busy_w[inst.model] -= inst.busy / svc.slots * svc.accelerators
            self.held_w[inst.model] -= svc.accelerators

    def observe(self, now: float, queued: Mapping[str, float]) -> Observation:
        """What the reconciler sees; `queued`: requests in flight per model not held in the
        instances' own records (fluid mode's estimate), spread over its ready instances."""
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
        pools = self.pool_utilisation(now)
        load = {m: self.observed(m, now, pools.get(svc.pool)) for m, svc in self.services.items()}
        return Observation(now, tuple(insts), load)

    def batch_held(self, uid: str) -> float:
        return 0.0 if self.batch is None else self.batch.held_on(uid)

    def batch_queued(self, model: str) -> dict[str, float]:
        """The queued batch as the gateway's gauges show it; nothing without a batch."""
        if self.batch is None:
            return {}
        requests, tokens = self.batch.queued(model)
        return {"batch_queued_requests": requests, "batch_queued_tokens": tokens}

    def next_pass(self, now: float) -> None:
        """The integrals since the last pass start again."""
        for m in self.services:
            self.pass_held[m] = self.pass_busy[m] = self.pass_active[m] = 0.0
        self.pass_started = now

    def pool_utilisation(self, now: float) -> dict[str, float]:
        """Per pool, busy accelerators over all of its accelerators since the last pass: the
        exporters' average (DCGM, npu-exporter), what the live reconciler reads."""
        span = now - self.pass_started
        if span <= 0:
            return {}
        busy: dict[str, float] = {}
        for m, svc in self.services.items():
            busy[svc.pool] = busy.get(svc.pool, 0.0) + self.pass_active[m]
        return {pool: b / (self.pool_size[pool] * span) for pool, b in busy.items()}

    def reconcile(self, now: float, queued: Mapping[str, float], since: float) -> None:
        self.advance(now)
        self.sample(now, since)
        # a policy that never acts needs no observation
        obs = self.observe(now, queued) if self.controller.acts else None
        self.next_pass(now)
        for action in self.controller.step(obs) if obs is not None else ():
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
        self.result.pool_busy_seconds = sum(self.active_area.values())
        pools = {svc.pool for svc in self.services.values()}
        # policy_comparison.owned: the pools' accelerators x duration
        self.result.owned_accelerator_seconds = sum(self.pool_size[p] for p in pools) * now
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
    for r in load.requests():
        if r.t >= load.end:
            break
        svc = services.get(r.model)
        if svc is None:
            continue
        replay.passes_until(r.t)
        replay.to_time(r.t)
        world.advance(r.t)
        tokens_out = svc.fit(r.input_tokens, r.output_tokens)
        if tokens_out is None:
            replay.too_long(r.model, r.t)
            continue
        world.arrived(
            r.model,
            r.t,
            1,
            svc.duration(r.input_tokens, tokens_out),
            (r.input_tokens, tokens_out if svc.reference_output else 0),
        )
        replay.attempt(r.model, r.t, r.t, r.input_tokens, tokens_out, 0)
    replay.passes_until(load.end)
    replay.to_time(load.end)
    replay.count_waiting(load.end)
    world.finish(load.end)
    result.wall_seconds = time.perf_counter() - started
    return result


class _RequestReplay:
    """Request mode's state beside the world: the completions of the requests in flight, the
    clients' retries of requests the gateway refused, and when the policy passes.

    The gateway queues nothing: a request takes a slot of the ready instance with the fewest
    requests in flight below its request limit (`context.batch`), or is answered 429 with
    Retry-After; the client tries again `retry_after` later, at most `retries` times.
    Every request goes through `attempt` and every completion through `to_time`, so these are
    the simulator's hot path.
    """

    __slots__ = ("controller", "done", "last_pass", "next_pass", "retrying", "seq", "world")

    def __init__(self, world: _World, controller: Controller) -> None:
        self.world = world
        self.controller = controller
        self.done: list[tuple[float, int, str]] = []  # (finish time, seq, uid)
        # (retry at, seq, model, arrived, input tokens, output tokens, attempts so far); a
        # negative `arrived` marks lost work served again (its outcome is already counted)
        self.retrying: list[tuple[float, int, str, float, int, int, int]] = []
        self.seq = 0
        self.next_pass = 0.0
        self.last_pass = 0.0

    def attempt(
        self, model: str, now: float, arrived: float, tokens_in: int, tokens_out: int, tries: int
    ) -> None:
        """The gateway admits the request to a free slot, or refuses it (429)."""
        world = self.world
        svc = world.services[model]
        ready = world.ready[model]
        best = min(ready, key=lambda i: i.busy) if ready else None
        if best is not None and best.busy < svc.slots and self.admitted(svc.tier):
            self.start(best, now, arrived, tokens_in, tokens_out)
        elif tries < world.options.retries:
            self.seq += 1
            heapq.heappush(
                self.retrying,
                (
                    now + world.options.retry_after,
                    self.seq,
                    model,
                    arrived,
                    tokens_in,
                    tokens_out,
                    tries + 1,
                ),
            )
        else:
            self.shed(model, arrived, tokens_in)

    def admitted(self, tier: str) -> bool:
        """The gateway's priority admission under its global limit, if it has one."""
        world = self.world
        limit = world.options.gateway_limit
        if limit is None:
            return True
        by_tier = world.inflight_by_tier
        reason = admit(
            world.rank[tier],
            total=sum(by_tier.values()),
            top_tier=by_tier[world.spec.tiers[0].name],
            limit=limit,
            headroom=world.options.tier_headroom,
        )
        return reason is None

    def start(
        self, inst: _Instance, now: float, arrived: float, tokens_in: int, tokens_out: int
    ) -> None:
        """`inst` takes a request that arrived at `arrived`: its TTFT is known now."""
        world = self.world
        svc = world.services[inst.model]
        ok = False
        if arrived >= 0:
            ttft = now - arrived + svc.prefill(tokens_in)
            ok = ttft <= svc.ttft_slo
            tier = world.result.tiers[svc.tier]
            tier.requests += 1
            tier.attainable += svc.prefill(tokens_in) <= svc.ttft_slo
            tier.within_slo += ok
            tier.ttft[bin_of(ttft)] += 1
        self.seq = seq = self.seq + 1
        inst.inflight[seq] = (ok, tokens_in, tokens_out)
        if not inst.busy:
            world.active_w[inst.model] += svc.accelerators
        inst.busy += 1
        world.inflight_by_tier[svc.tier] += 1
        world.busy_w[inst.model] += svc.accelerators / svc.slots
        heapq.heappush(self.done, (now + svc.duration(tokens_in, tokens_out), seq, inst.uid))

    def shed(self, model: str, arrived: float, tokens_in: int) -> None:
        """Refused on every attempt: the client gives up (lost work: it is lost for good)."""
        svc = self.world.services[model]
        tier = self.world.result.tiers[svc.tier]
        tier.shed += 1
        if arrived >= 0:
            tier.requests += 1
            tier.attainable += svc.prefill(tokens_in) <= svc.ttft_slo

    def too_long(self, model: str, now: float) -> None:
        """The engine refuses a prompt longer than the model's context (HTTP 400)."""
        self.world.arrived(model, now, 1, 0.0, (0, 0))
        tier = self.world.result.tiers[self.world.services[model].tier]
        tier.requests += 1
        tier.too_long += 1

    def requeue_lost(self, now: float) -> None:
        """Requests killed by a Terminate are sent again from the start."""
        for model, tokens_in, tokens_out in self.world.lost:
            self.attempt(model, now, -1.0, tokens_in, tokens_out, 0)
        self.world.lost.clear()

    def finish(self, t: float) -> None:
        _, key, uid = heapq.heappop(self.done)
        world = self.world
        inst = world.instances.get(uid)
        if inst is None or key not in inst.inflight:
            return
        del inst.inflight[key]
        inst.busy -= 1
        svc = world.services[inst.model]
        world.inflight_by_tier[svc.tier] -= 1
        world.busy_w[inst.model] -= svc.accelerators / svc.slots
        if not inst.busy:
            world.active_w[inst.model] -= svc.accelerators

    def to_time(self, now: float) -> None:
        """Completions, instances becoming ready and clients' retries up to `now`, in time
        order (a completion first when they tie: its slot frees before the retry lands)."""
        world, done, loading, retrying = self.world, self.done, self.world.loading, self.retrying
        while True:
            t_done = done[0][0] if done else math.inf
            t_ready = loading[0][0] if loading else math.inf
            t_retry = retrying[0][0] if retrying else math.inf
            t = min(t_done, t_ready, t_retry)
            if t > now:
                return
            world.advance(t)
            if t_done == t:
                self.finish(t)
            elif t_ready == t:
                world.due_ready(t)
            else:
                _, _, model, arrived, tokens_in, tokens_out, tries = heapq.heappop(retrying)
                world.arrived(model, t, 1, 0.0, (0, 0))  # the gateway counts every attempt
                self.attempt(model, t, arrived, tokens_in, tokens_out, tries)

    def passes_until(self, now: float) -> None:
        """Every policy pass due by `now`, each seeing the world as it was at its time."""
        while self.next_pass <= now:
            at = self.next_pass
            self.to_time(at)
            self.world.reconcile(at, {}, self.last_pass)
            self.requeue_lost(at)
            self.last_pass = at
            self.next_pass += self.controller.interval

    def count_waiting(self, end: float) -> None:
        """Requests still retrying at `end`: those already past the SLO missed it; the others
        are left out (their outcome is unknown)."""
        for _, _, model, arrived, tokens_in, _, _ in self.retrying:
            svc = self.world.services[model]
            if arrived >= 0 and end - arrived > svc.ttft_slo:
                tier = self.world.result.tiers[svc.tier]
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
    claimed = dict.fromkeys(services, 0.0)  # slots they go on needing (kept from the batch)
    rng = random.Random(options.seed)
    dt = options.tick
    step = load.count_step
    per_tick = max(1, round(dt / step))
    step = dt / per_tick
    drawn = options.variability and not options.poisson
    counts = {m: c for m, c in load.counts.items() if m in services} if drawn else {}
    rates = {m: RateCursor(load.series.get(m, ()), load.window) for m in services}
    servers = {
        m: FluidServer(
            s, result.tiers[s.tier], options.retries, options.retry_after, step, m in counts
        )
        for m, s in services.items()
    }
    batched = world.batch is not None
    next_pass = 0.0
    last_pass = 0.0
    ticks = math.ceil(load.end / dt)
    for k in range(ticks):
        now = k * dt
        span = min(dt, load.end - now)
        steps = max(1, round(span / step))
        if now >= next_pass:
            _busy(world, servers, now)
            world.reconcile(now, {m: s.in_flight(now) for m, s in servers.items()}, last_pass)
            last_pass = now
            next_pass += controller.interval
        world.due_ready(now)
        for m, svc in services.items():
            server = servers[m]
            drawn_counts = counts.get(m)
            if drawn_counts is not None:
                arrivals = drawn_counts[k * per_tick : k * per_tick + steps]
            else:
                mean = rates[m].at(now) * span
                arrivals = spread(_poisson(rng, mean) if options.poisson else mean, steps)
            count = sum(arrivals)
            if count > 0:
                tokens = (count * svc.reference_input, count * svc.reference_output)
                world.arrived(m, now, count, count * server.slots.duration, tokens)
            free = len(world.ready[m]) * svc.slots
            if batched:
                free -= sum(world.batch_held(i.uid) for i in world.ready[m])
            served, retried = server.serve(now, arrivals, free, _preempt(world, m))
            if retried > 0:  # the gateway counts every attempt, 429s included
                world.arrived(m, now, retried, 0.0, (0.0, 0.0))
            slots = server.slots
            if batched:  # what they hold over the tick, and at its end or at its rate
                occupancy[m] = slots.held_between(now, now + span)
                claimed[m] = max(slots.at(now + span), served / span * slots.duration)
            slots.release(now + span)
            # least-outstanding routing spreads the requests in flight: one per instance
            # first (the slots' busy time is added at each pass: `_busy`)
            world.busy_w[m] = 0.0
            busy = max(slots.held, served / span * slots.duration)  # Little's law when short
            world.active_w[m] = min(len(world.ready[m]), busy) * svc.accelerators
        queued = {m: server.queued() for m, server in servers.items()}
        _batch_tick(world, now, span, occupancy, claimed, queued)
        world.advance(now + span)
    end = load.end
    _busy(world, servers, end)
    for server in servers.values():
        server.finish(end)
    world.finish(end)
    result.wall_seconds = time.perf_counter() - started
    return result


def _busy(world: _World, servers: Mapping[str, FluidServer], now: float) -> None:
    """The interactive requests' busy slot-seconds since the last call, as accelerator-seconds
    (summed per pass, not per tick: the slots know when each request held its slot)."""
    for m, server in servers.items():
        svc = world.services[m]
        world.add_busy(m, server.slots.busy_seconds(now) / svc.slots * svc.accelerators)


def _preempt(world: _World, model: str) -> Callable[[float, float], float] | None:
    """How an interactive request takes a batch request's slot on `model`'s instances."""
    batch = world.batch
    if batch is None or not any(batch.held_on(i.uid) for i in world.ready[model]):
        return None
    uids = [i.uid for i in world.ready[model]]
    return lambda t, n: batch.preempt(uids, n, t)


def _batch_tick(
    world: _World,
    now: float,
    span: float,
    occupancy: Mapping[str, float],
    claimed: Mapping[str, float],
    queued: Mapping[str, float],
) -> None:
    """The backlog takes the slots the interactive requests do not claim (none while they
    queue) and serves until the tick's end; its busy slots join each model's (and make
    more of its instances busy as the exporters see them); then the batches due by the next
    tick are submitted."""
    batch = world.batch
    if batch is None:
        return
    waiting = {m: queued[m] > 1e-9 for m in world.services}
    held = {}
    for m, svc in world.services.items():
        ready = world.ready[m]
        if batch.has_work(m) and ready and not waiting[m]:
            interactive = claimed[m] / len(ready)
            for inst in ready:
                batch.dispatch(m, inst.uid, batch.slots(inst.uid, svc.slots, interactive), now)
        held[m] = sum(batch.held_on(i.uid) for i in ready)
    idle = batch.run(now + span, {m: not w for m, w in waiting.items()})
    for m, svc in world.services.items():
        busy = (held[m] * span - idle.get(m, 0.0)) / span
        world.busy_w[m] += busy / svc.slots * svc.accelerators
        ready = len(world.ready[m])
        active = min(ready, occupancy[m] + held[m]) * svc.accelerators
        world.active_w[m] = max(world.active_w[m], active)
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
