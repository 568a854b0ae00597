"""A batch backlog: requests that wait for idle capacity at the lowest priority (fluid mode).

A batch is N requests of one model submitted at once (`--batch MODEL=N[:IN:OUT][@START]`). Its
requests are dispatched only into request slots the interactive traffic leaves free: never
while the model's interactive requests queue (dispatch yields at once), never into the last
`reserve` slots of an instance (kept for interactive arrivals, as the gateway does), and never
shed by the queue timeout. Dispatched requests hold their slots for their service time, in
chunks (the requests one instance took at one moment, which finish together); a slot a chunk
frees is refilled at that moment while the queue has work, so a busy backlog keeps its slots
busy between ticks. When an instance is drained, its chunks go back to the front of the queue
and the work they had done is counted as lost.

The queue tells the policy what the gateway's gauges would (`queued`): requests and tokens
not yet dispatched.
"""

from __future__ import annotations

import contextlib
import heapq
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem
from xpool.sim.requests import Request
from xpool.sim.service import Service

SPEC = "MODEL=N[:IN_TOKENS:OUT_TOKENS][@START]"


@dataclass(frozen=True)
class BatchSpec:
    """One `--batch` argument; token lengths None: the model's reference request."""

    model: str
    requests: int
    input_tokens: int | None
    output_tokens: int | None
    start: float  # seconds into the simulation


def parse_batch(value: str) -> BatchSpec:
    """`MODEL=N[:IN_TOKENS:OUT_TOKENS][@START]`, e.g. `batch-eval=20000:2048:512@2h`."""

    def bad(message: str) -> InputError:
        return InputError([Problem("--batch", "", f"{value!r}: {message}")])

    rest, at, when = value.partition("@")
    start = 0.0
    if at:
        try:
            start = parse_duration(when)
        except ValueError as exc:
            raise bad(f"START: {exc}") from None
    model, eq, sizes = rest.partition("=")
    if not eq or not model:
        raise bad(f"write {SPEC}")
    fields = sizes.split(":")
    if len(fields) not in (1, 3):
        raise bad(f"give N or N:IN_TOKENS:OUT_TOKENS ({SPEC})")
    numbers: list[int] = []
    for name, text in zip(("N", "IN_TOKENS", "OUT_TOKENS"), fields, strict=False):
        number = None
        with contextlib.suppress(ValueError):
            number = int(text)
        if number is None or number < (1 if name != "OUT_TOKENS" else 0):
            least = 0 if name == "OUT_TOKENS" else 1
            raise bad(f"{name} {text!r} must be a whole number >= {least}")
        numbers.append(number)
    tokens = numbers[1:] if len(numbers) == 3 else [None, None]
    return BatchSpec(model, numbers[0], tokens[0], tokens[1], start)


@dataclass(frozen=True)
class BatchJob:
    """A batch as the engine serves it: `duration` is one request's slot-seconds."""

    model: str
    submitted: float
    requests: int
    input_tokens: int
    output_tokens: int
    duration: float


@dataclass
class JobResult:
    job: BatchJob
    completed: float = 0.0  # requests
    finished: float | None = None  # when its last request completed

    def as_dict(self) -> dict[str, Any]:
        job = self.job
        return {
            "model": job.model,
            "submitted": job.submitted,
            "requests": job.requests,
            "completed": round(self.completed, 1),
            "finishedSeconds": None if self.finished is None else round(self.finished, 1),
            "completionSeconds": (
                None if self.finished is None else round(self.finished - job.submitted, 1)
            ),
        }


@dataclass
class BatchResult:
    """What the backlog got done: judged on goodput and time to complete."""

    jobs: list[JobResult] = field(default_factory=list)
    requeued: float = 0.0  # requests taken back from drained instances
    lost_accelerator_seconds: float = 0.0  # the work those had done
    end: float = 0.0  # the simulation's end

    @property
    def completed(self) -> float:
        return sum(j.completed for j in self.jobs)

    @property
    def tokens(self) -> float:
        return sum(j.completed * (j.job.input_tokens + j.job.output_tokens) for j in self.jobs)

    @property
    def span(self) -> float:
        """From the first submission to the last completion (the end while unfinished)."""
        first = min((j.job.submitted for j in self.jobs), default=0.0)
        return self.completion_seconds or (self.end - first)

    @property
    def completion_seconds(self) -> float | None:
        """Time to complete every batch, None while any is unfinished."""
        if not self.jobs or any(j.finished is None for j in self.jobs):
            return None
        first = min(j.job.submitted for j in self.jobs)
        return max(j.finished for j in self.jobs if j.finished is not None) - first

    def per_hour(self, amount: float) -> float | None:
        return amount / (self.span / 3600) if self.span > 0 else None

    def as_dict(self) -> dict[str, Any]:
        req_h, tok_h = self.per_hour(self.completed), self.per_hour(self.tokens)
        done = self.completion_seconds
        return {
            "requests": sum(j.job.requests for j in self.jobs),
            "completed": round(self.completed, 1),
            "tokensCompleted": round(self.tokens),
            "requestsPerHour": None if req_h is None else round(req_h, 1),
            "tokensPerHour": None if tok_h is None else round(tok_h),
            "completionSeconds": None if done is None else round(done, 1),
            "requeued": round(self.requeued, 1),
            "lostAcceleratorSeconds": round(self.lost_accelerator_seconds, 1),
            "jobs": [j.as_dict() for j in self.jobs],
        }


_EPS = 1e-9


@dataclass
class _Chunk:
    finish: float
    seq: int
    uid: str
    job: int
    count: float
    started: float


class BatchQueue:
    """Every model's batch backlog, the chunks in flight on each instance, and the results."""

    def __init__(
        self, jobs: Iterable[BatchJob], per_slot: Mapping[str, float], reserve: int
    ) -> None:
        """`per_slot`: accelerators behind one request slot of each model."""
        self.result = BatchResult([JobResult(j) for j in sorted(jobs, key=lambda j: j.submitted)])
        self.per_slot = per_slot
        self.reserve = reserve
        self.unsubmitted = deque(range(len(self.result.jobs)))
        self.pending: dict[str, deque[list[float]]] = {}  # model -> [job, requests] FIFO
        self.chunks: list[tuple[float, int]] = []  # (finish, seq) heap over `live`
        self.live: dict[int, _Chunk] = {}
        self.held: dict[str, float] = {}  # uid -> slots its chunks hold
        self.seq = 0

    def submit_due(self, now: float) -> None:
        jobs = self.result.jobs
        while self.unsubmitted and jobs[self.unsubmitted[0]].job.submitted <= now:
            i = self.unsubmitted.popleft()
            self.pending.setdefault(jobs[i].job.model, deque()).append([i, jobs[i].job.requests])

    def queued(self, model: str) -> tuple[float, float]:
        """Requests and tokens not yet dispatched (the gateway's gauges)."""
        requests = tokens = 0.0
        for i, n in self.pending.get(model, ()):
            job = self.result.jobs[int(i)].job
            requests += n
            tokens += n * (job.input_tokens + job.output_tokens)
        return requests, tokens

    def held_on(self, uid: str) -> float:
        return self.held.get(uid, 0.0)

    def has_work(self, model: str) -> bool:
        return bool(self.pending.get(model))

    def dispatch(self, model: str, uid: str, free: float, now: float) -> float:
        """Up to `free` slots of `uid` (beyond its reserve) take queued requests; returns
        how many it took."""
        queue = self.pending.get(model)
        took = 0.0
        while queue and free - took > _EPS:
            entry = queue[0]
            take = min(entry[1], free - took)
            job = self.result.jobs[int(entry[0])].job
            self.seq += 1
            chunk = _Chunk(now + job.duration, self.seq, uid, int(entry[0]), take, now)
            self.live[self.seq] = chunk
            heapq.heappush(self.chunks, (chunk.finish, self.seq))
            self.held[uid] = self.held.get(uid, 0.0) + take
            took += take
            entry[1] -= take
            if entry[1] <= _EPS:
                queue.popleft()
        return took

    def run(self, end: float, refill: Mapping[str, bool]) -> dict[str, float]:
        """Completions up to `end`, each slot refilled at its completion when `refill[model]`
        (the model's interactive queue is empty); returns the slot-seconds by which each
        model's batch slots were idle before `end` after a completion (not refilled)."""
        idle: dict[str, float] = {}
        while self.chunks and self.chunks[0][0] <= end:
            finish, seq = heapq.heappop(self.chunks)
            chunk = self.live.pop(seq, None)
            if chunk is None:
                continue
            result = self.result.jobs[chunk.job]
            result.completed += chunk.count
            if result.completed >= result.job.requests - 1e-6:
                result.finished = finish
            self.held[chunk.uid] -= chunk.count
            model = result.job.model
            took = self.dispatch(model, chunk.uid, chunk.count, finish) if refill[model] else 0.0
            idle[model] = idle.get(model, 0.0) + (chunk.count - took) * (end - finish)
        return idle

    def requeue(self, uid: str, now: float) -> None:
        """A drained instance's chunks back to the front of their queues, their work lost."""
        taken = [c for c in self.live.values() if c.uid == uid]
        for chunk in sorted(taken, key=lambda c: -c.seq):
            self._give_back(chunk, chunk.count, now)
        self.held.pop(uid, None)

    def preempt(self, uids: Iterable[str], slots: float, now: float) -> float:
        """An interactive request that finds every slot full takes a batch request's slot,
        as the gateway does: up to `slots` slots of the youngest chunks on `uids` go back to
        the front of their queues, their work lost. Returns the slots freed."""
        on = set(uids)
        freed = 0.0
        for chunk in sorted((c for c in self.live.values() if c.uid in on), key=lambda c: -c.seq):
            if freed >= slots - _EPS:
                break
            n = min(chunk.count, slots - freed)
            self._give_back(chunk, n, now)
            self.held[chunk.uid] -= n
            freed += n
        return freed

    def _give_back(self, chunk: _Chunk, n: float, now: float) -> None:
        """`n` requests of `chunk` back to the front of their queue."""
        if n >= chunk.count - _EPS:
            del self.live[chunk.seq]
        chunk.count -= n
        job = self.result.jobs[chunk.job].job
        queue = self.pending.setdefault(job.model, deque())
        if queue and int(queue[0][0]) == chunk.job:
            queue[0][1] += n
        else:
            queue.appendleft([chunk.job, n])
        self.result.requeued += n
        self.result.lost_accelerator_seconds += n * (now - chunk.started) * self.per_slot[job.model]

    def slots(self, uid: str, slots: int, interactive: float) -> float:
        """Free slots of `uid` a batch may take: beyond its reserve and interactive load."""
        return max(0.0, slots - self.reserve - interactive - self.held_on(uid))


def batch_jobs(specs: Iterable[BatchSpec], services: Mapping[str, Service]) -> list[BatchJob]:
    """`--batch` arguments as jobs: lengths default to each model's reference request."""
    out = []
    for s in specs:
        svc = services.get(s.model)
        if svc is None:
            known = ", ".join(sorted(services))
            raise InputError(
                [Problem("--batch", "", f"model {s.model!r} is not a placed model; use: {known}")]
            )
        tokens_in = svc.reference_input if s.input_tokens is None else s.input_tokens
        tokens_out = svc.reference_output if s.output_tokens is None else s.output_tokens
        seconds = svc.duration(tokens_in, tokens_out)
        out.append(BatchJob(s.model, s.start, s.requests, tokens_in, tokens_out, seconds))
    return out


def trace_jobs(reqs: Iterable[Request], services: Mapping[str, Service]) -> list[BatchJob]:
    """A batch trace's requests as jobs: those submitted together with the same lengths."""
    counts: dict[tuple[float, str, int, int], int] = {}
    for r in reqs:
        if r.model not in services:
            continue
        key = (r.t, r.model, r.input_tokens, r.output_tokens)
        counts[key] = counts.get(key, 0) + 1
    return [
        BatchJob(m, t, n, i, o, services[m].duration(i, o)) for (t, m, i, o), n in counts.items()
    ]
