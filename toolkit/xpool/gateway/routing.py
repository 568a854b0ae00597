"""The routing table: public model name -> instances (model UIDs), with in-flight accounting.

Each instance is one Xinference model UID of one model version. The table decides, per
request and under one lock: whether the request is admitted (priority admission, per-instance
request limits), which version serves it (canary weights, sticky per client), and which
instance (least outstanding requests among the ready, non-draining ones). A `Lease` is
released when the response has been fully sent, so in-flight counts include running streams.

Weight 0 means no traffic: a version weighing 0 serves only while no version with a weight
above 0 has an open (ready, non-draining, not excluded) instance, so a rollback to weight 0
takes effect for the next request even when the weighted versions are at their limits (429).

Draining: `mark_draining(uid)` stops new requests to `uid` at once; `wait_drained(uid,
timeout)` blocks until its in-flight count reaches zero. Each slot records `since`, the unix
time it entered its state (ready or draining), for observers that time drains. The table is thread-safe: `xpool up`
and the admin endpoint write from worker threads, the gateway reads from its event loop.

Batch requests (`acquire(..., ticket=...)`, the Batch API's runner) come last: they get an
instance only while it keeps `batch_reserve` request slots free for interactive requests,
hold at most `batch_per_instance` slots of it, and none for BATCH_HOLD seconds after an
interactive request of the model was refused for capacity. An interactive request that finds
every instance at its limit takes the slot of a batch request instead: the table calls that
request's `ticket.preempt()` (its runner cancels it and queues the line again) and admits the
interactive one at once, one over the limit until the cancelled request has released.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from xpool.gateway.policy import admit, client_point, pick_version

DEFAULT_LIMIT = 1_000_000  # an instance without a declared request limit
# An instance's first requests may be slower (lazy initialisation, kernels built for new
# shapes, cold caches). Leases of those are marked cold and the canary gate leaves them out,
# for both versions alike. Five is a cheap precaution, not a measured knee: on the embedded
# default under load, the first requests were within the noise of the later ones.
WARMUP_REQUESTS = 5
# After an interactive request of a model was refused for capacity, batch requests of that
# model wait this long: a queue of interactive requests drains before batch work refills it.
BATCH_HOLD = 1.0
# The tier of batch leases, ranked below every tier; no tier name (tier names are
# alphanumeric), so no declared tier can share it.
BATCH_TIER = "(batch)"


class Ticket(Protocol):
    """A batch request in flight, which an interactive request may preempt."""

    def preempt(self) -> None:
        """Cancel the request and queue its line again (called under the table's lock)."""


@dataclass(frozen=True)
class Route:
    model: str  # public name: the `model` field clients send
    model_type: str  # LLM | embedding | rerank
    uids: tuple[str, ...]  # routable (ready, not draining)
    tier: str = ""
    draining: tuple[str, ...] = ()


@dataclass
class Slot:
    uid: str
    model: str
    version: str
    limit: int
    inflight: int = 0
    draining: bool = False
    since: float = 0.0  # time.time() when it became ready, or draining
    served: int = 0  # requests leased to it: its first WARMUP_REQUESTS are its warm-up


@dataclass
class _Model:
    name: str
    model_type: str
    tier: str
    slots: dict[str, Slot] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # version -> weight


@dataclass(frozen=True)
class Lease:
    uid: str
    model: str
    version: str
    tier: str
    warm: bool = True  # False for an instance's first requests (kept out of the canary gate)
    ticket: Ticket | None = field(default=None, compare=False)  # a batch request's


@dataclass(frozen=True)
class Refusal:
    status: int  # 404 no such model / no instance, 429 shed
    reason: str  # unknown_model | no_instance | instance_limits | overload
    tier: str = ""
    message: str = ""


class RoutingTable:
    def __init__(
        self,
        *,
        tier_ranks: Mapping[str, int] | None = None,
        max_inflight: int | None = None,
        tier_headroom: float = 0.15,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._models: dict[str, _Model] = {}
        self._slots: dict[str, Slot] = {}
        self._tier_ranks = dict(tier_ranks or {"P0": 0, "P1": 1, "P2": 2})
        self.max_inflight = max_inflight
        self.tier_headroom = tier_headroom
        self._rng = random.Random(seed)
        self._rr = itertools.count()
        self._total = 0
        self._by_rank: dict[int, int] = {}
        self.batch_reserve = 1
        self.batch_per_instance = 4
        self._tickets: dict[str, list[Ticket]] = {}  # uid -> its batch requests, oldest first
        self._batch_hold: dict[str, float] = {}  # model -> monotonic time batch may resume

    # -- writes ------------------------------------------------------------------------------

    def add(
        self,
        model: str,
        model_type: str,
        uid: str,
        *,
        version: str = "",
        tier: str = "",
        limit: int | None = None,
        draining: bool = False,
        since: float | None = None,
    ) -> None:
        """Route `model` to `uid` (ready; or `draining` at once, never routed, for one whose
        drain was asked while it loaded). Re-adding an instance keeps its in-flight count and
        sets draining as given; `since` changes only with the state (default: now)."""
        now = time.time() if since is None else since
        with self._lock:
            entry = self._models.get(model)
            if entry is None:
                entry = self._models[model] = _Model(model, model_type, tier)
            elif tier:
                entry.tier = tier
            slot = self._slots.get(uid)
            if slot is None:
                slot = Slot(uid, model, version, limit or DEFAULT_LIMIT, 0, draining, now)
                self._slots[uid] = slot
            else:
                if slot.draining != draining:
                    slot.draining, slot.since = draining, now
                slot.limit = limit or slot.limit
            entry.slots[uid] = slot
            self._changed.notify_all()

    def remove(self, uid: str) -> None:
        """Forget `uid` (its in-flight leases still release cleanly)."""
        with self._lock:
            slot = self._slots.pop(uid, None)
            self._tickets.pop(uid, None)
            if slot is not None:
                self._models[slot.model].slots.pop(uid, None)
            self._changed.notify_all()

    def mark_draining(self, uid: str) -> bool:
        """No new requests go to `uid`; False when the table does not know it."""
        with self._lock:
            slot = self._slots.get(uid)
            if slot is None:
                return False
            if not slot.draining:
                slot.draining, slot.since = True, time.time()
            return True

    def set_weights(self, model: str, weights: Mapping[str, float]) -> None:
        """Canary weights of `model`'s versions (relative; versions not named weigh 0)."""
        with self._lock:
            entry = self._models.get(model)
            if entry is None:
                raise KeyError(model)
            entry.weights = {v: float(w) for v, w in weights.items()}

    def declare(self, model: str, model_type: str, tier: str, weights: Mapping[str, float]) -> None:
        """Know `model` before it has instances (so /v1/models and weights work at once)."""
        with self._lock:
            entry = self._models.setdefault(model, _Model(model, model_type, tier))
            entry.tier = tier or entry.tier
            entry.weights = {v: float(w) for v, w in weights.items()}

    # -- reads -------------------------------------------------------------------------------

    def inflight(self, uid: str) -> int:
        with self._lock:
            slot = self._slots.get(uid)
            return slot.inflight if slot else 0

    def slots(self, model: str | None = None) -> list[Slot]:
        """Copies of the instances (of `model`), by UID."""
        with self._lock:
            items = [
                Slot(s.uid, s.model, s.version, s.limit, s.inflight, s.draining, s.since, s.served)
                for s in self._slots.values()
                if model is None or s.model == model
            ]
        return sorted(items, key=lambda s: s.uid)

    def weights(self, model: str) -> dict[str, float]:
        with self._lock:
            entry = self._models.get(model)
            return dict(entry.weights) if entry else {}

    def tier_of(self, model: str) -> str:
        with self._lock:
            entry = self._models.get(model)
            return entry.tier if entry else ""

    def routes(self) -> list[Route]:
        with self._lock:
            out = [
                Route(
                    m.name,
                    m.model_type,
                    tuple(sorted(u for u, s in m.slots.items() if not s.draining)),
                    m.tier,
                    tuple(sorted(u for u, s in m.slots.items() if s.draining)),
                )
                for m in self._models.values()
            ]
        return sorted(out, key=lambda r: r.model)

    def pick(self, model: str) -> str | None:
        """The UID a request for `model` would get now, without leasing it (or None)."""
        lease = self.acquire(model)
        if not isinstance(lease, Lease):
            return None
        self.release(lease)
        return lease.uid

    # -- leases ------------------------------------------------------------------------------

    def acquire(
        self,
        model: str,
        *,
        client_id: str | None = None,
        exclude: Iterable[str] = (),
        avoid_version: str | None = None,
        ticket: Ticket | None = None,
    ) -> Lease | Refusal:
        """Admit one request for `model` and lease it an instance, or say why not.

        `exclude` names instances that already failed this request; `avoid_version` is the
        version that failed it, left aside when another candidate version has a free instance
        (a retry then lands on another version, not on a sibling with the same fault).
        `ticket`: a batch request (see the module)."""
        excluded = set(exclude)
        with self._lock:
            entry = self._models.get(model)
            if entry is None:
                known = ", ".join(sorted(m for m, e in self._models.items() if e.slots))
                return Refusal(
                    404, "unknown_model", "", f"model '{model}' is not served (models: {known})"
                )
            open_slots = [
                s for s in entry.slots.values() if not s.draining and s.uid not in excluded
            ]
            if not open_slots:
                # Known but with nothing routable (all draining, e.g. their worker is being
                # evicted, or still loading): retry shortly; a retry that ran out is a 503.
                return Refusal(
                    429 if not excluded else 503,
                    "no_instance",
                    entry.tier,
                    f"model '{model}' has no ready instance (draining or loading); retry shortly",
                )
            tier = BATCH_TIER if ticket is not None else entry.tier
            rank = self._tier_ranks.get(tier, len(self._tier_ranks))
            reason = admit(
                rank,
                total=self._total,
                top_tier=self._by_rank.get(0, 0),
                limit=self.max_inflight,
                headroom=self.tier_headroom,
            )
            if reason is not None:
                if ticket is None:
                    self._hold_batch(model)
                return Refusal(
                    429,
                    reason,
                    entry.tier,
                    f"gateway overloaded: {self._total} requests in flight (limit "
                    f"{self.max_inflight}); tier {entry.tier} is shed first",
                )
            weights = entry.weights
            weighted = [s for s in open_slots if weights.get(s.version, 0.0) > 0]
            candidates = weighted or open_slots
            if ticket is not None:
                free = self._batch_free(model, candidates)
            else:
                free = [s for s in candidates if s.inflight < s.limit]
            if not free:
                return self._full(model, entry.tier, candidates, ticket)
            if avoid_version is not None:
                free = [s for s in free if s.version != avoid_version] or free
            return self._lease(self._choose(free, weights, client_id), model, tier, rank, ticket)

    def _lease(self, slot: Slot, model: str, tier: str, rank: int, ticket: Ticket | None) -> Lease:
        slot.inflight += 1
        slot.served += 1
        self._total += 1
        self._by_rank[rank] = self._by_rank.get(rank, 0) + 1
        if ticket is not None:
            self._tickets.setdefault(slot.uid, []).append(ticket)
        return Lease(slot.uid, model, slot.version, tier, slot.served > WARMUP_REQUESTS, ticket)

    def _batch_free(self, model: str, candidates: list[Slot]) -> list[Slot]:
        """The instances a batch request may take now (module docstring)."""
        if time.monotonic() < self._batch_hold.get(model, 0.0):
            return []
        return [
            s
            for s in candidates
            if s.inflight + self.batch_reserve < s.limit
            and len(self._tickets.get(s.uid, ())) < self.batch_per_instance
        ]

    def _hold_batch(self, model: str) -> None:
        self._batch_hold[model] = time.monotonic() + BATCH_HOLD

    def _full(
        self, model: str, tier: str, candidates: list[Slot], ticket: Ticket | None
    ) -> Lease | Refusal:
        """No free instance: a batch request waits; an interactive one takes the slot of the
        newest batch request on the least loaded instance, else is refused (429)."""
        if ticket is not None:
            return Refusal(429, "batch_yield", BATCH_TIER, f"no idle capacity for '{model}'")
        self._hold_batch(model)
        taken = [s for s in candidates if self._tickets.get(s.uid)]
        if taken:
            slot = min(taken, key=lambda s: s.inflight)
            self._tickets[slot.uid].pop().preempt()
            rank = self._tier_ranks.get(tier, len(self._tier_ranks))
            return self._lease(slot, model, tier, rank, None)
        return Refusal(
            429, "instance_limits", tier, f"every instance of '{model}' is at its request limit"
        )

    def batch_room(self, model: str) -> int:
        """How many more batch requests `model`'s instances would take now."""
        with self._lock:
            entry = self._models.get(model)
            if entry is None:
                return 0
            weighted = [
                s
                for s in entry.slots.values()
                if not s.draining and entry.weights.get(s.version, 0.0) > 0
            ]
            candidates = weighted or [s for s in entry.slots.values() if not s.draining]
            return sum(
                min(
                    s.limit - self.batch_reserve - s.inflight,
                    self.batch_per_instance - len(self._tickets.get(s.uid, ())),
                )
                for s in self._batch_free(model, candidates)
            )

    def _choose(
        self, free: list[Slot], weights: Mapping[str, float], client_id: str | None
    ) -> Slot:
        """The version by weight (sticky per client), then its least-loaded instance."""
        versions = sorted({s.version for s in free})
        chosen = versions[0]
        if len(versions) > 1:
            point = client_point(client_id) if client_id else self._rng.random()
            chosen = pick_version([(v, weights.get(v, 0.0)) for v in versions], point) or chosen
        pool = [s for s in free if s.version == chosen]
        least = min(s.inflight for s in pool)
        best = [s for s in pool if s.inflight == least]
        return best[next(self._rr) % len(best)] if len(best) > 1 else best[0]

    def release(self, lease: Lease) -> None:
        with self._lock:
            slot = self._slots.get(lease.uid)
            if slot is not None and slot.inflight > 0:
                slot.inflight -= 1
            tickets = self._tickets.get(lease.uid, [])
            if lease.ticket is not None and lease.ticket in tickets:
                tickets.remove(lease.ticket)
            rank = self._tier_ranks.get(lease.tier, len(self._tier_ranks))
            self._total = max(0, self._total - 1)
            self._by_rank[rank] = max(0, self._by_rank.get(rank, 0) - 1)
            if slot is not None and slot.draining and slot.inflight == 0:
                self._changed.notify_all()

    def wait_drained(self, uid: str, timeout: float) -> bool:
        """Block until `uid` has no request in flight; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                slot = self._slots.get(uid)
                if slot is None or slot.inflight == 0:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
