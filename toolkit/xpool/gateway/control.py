"""Instance lifecycle behind the gateway's admin endpoint: non-blocking launch, drain and
terminate for the reconciler, the blocking `scale` (`xpool scale`) built on them, canary weights.

Every instance this gateway knows is in one state. `loading`: a launch thread is bringing the
UID up (Xinference CREATING/LOADING); `ready`: in the routing table, routed; `draining`: no new
requests, in-flight ones finish; `failed`: the last launch of the UID failed (the record stays,
with the error, until the UID is launched again or terminated). Ready and draining instances live
in the routing table; loading and failed ones in this module's launch records. One lock guards
both, so a UID moves between them atomically, is allocated once and launched by one thread.

Xinference cannot cancel a load (a DELETE while it is CREATING answers "not found" and the load
goes on), so a drain asked while an instance loads makes it `draining` at once and it joins the
table drained (never routed) when ready; a terminate asked while it loads is carried out by its
launch thread as soon as the load ends.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from xpool.adapters.xinference import (
    Pin,
    XinferenceClient,
    ensure_instances,
)
from xpool.errors import RemoteError
from xpool.gateway.admin_routes import AdminError
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.routing import DEFAULT_LIMIT, RoutingTable, Slot
from xpool.gateway.wiring import (
    ModelLimits,
)
from xpool.render.instances import Want, instance_uid, parse_uid

STATES = ("loading", "ready", "draining", "failed")

# (want, new UIDs, uid -> worker of launches still loading) -> one Pin per new UID
LaunchPlacer = Callable[[Want, list[str], dict[str, str]], list[Pin]]


@dataclass(frozen=True)
class PinnedWant(Want):
    """A Want for exactly the given UIDs (not 1..count)."""

    pinned: tuple[str, ...] = ()

    def uids(self) -> list[str]:
        return list(self.pinned)


@dataclass
class _Launch:
    """A launch this gateway started whose instance is not (yet) in the routing table."""

    uid: str
    model: str
    version: str
    since: float  # time.time() of the last state change
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None  # set: failed
    draining: bool = False  # drain asked while loading: joins the table drained
    terminate: bool = False  # terminate asked while loading: done when the load ends
    pin: Pin | None = None  # the worker (and devices) it was asked to run on

    @property
    def state(self) -> str:
        if self.error is not None:
            return "failed"
        return "draining" if self.draining else "loading"


def _n(uid: str) -> int:
    parsed = parse_uid(uid)
    return parsed[2] if parsed else 0


def _unique(uids: list[str]) -> list[str]:
    return list(dict.fromkeys(uids))


class Scaler:
    def __init__(
        self,
        client: XinferenceClient,
        table: RoutingTable,
        metrics: GatewayMetrics,
        wants: dict[tuple[str, str], Want],
        limits: dict[str, ModelLimits],
        *,
        drain_timeout: float,
        launch_timeout: float = 600.0,
        log: Callable[[str], None] = lambda _m: None,
        on_launched: Callable[[str], None] = lambda _u: None,
        on_terminated: Callable[[str], None] = lambda _u: None,
        placer: LaunchPlacer | None = None,
    ) -> None:
        """`on_launched(uid)` runs when a launch of a UID new to the gateway starts and
        `on_terminated(uid)` when the gateway terminated one (`xpool up` terminates what is
        left of its own launches when it stops). `placer` names the worker of each launch
        that names none (a multi-worker `xpool up`), or raises AdminError saying why not."""
        self.client = client
        self.table = table
        self.metrics = metrics
        self.wants = wants  # (model, version) -> Want (registration + launch spec)
        self.limits = limits
        self.drain_timeout = drain_timeout
        self.launch_timeout = launch_timeout
        self.log = log
        self.on_launched = on_launched
        self.on_terminated = on_terminated
        self.placer = placer
        self._lock = threading.Lock()  # one blocking scale at a time
        self._state = threading.Lock()  # the launch records and the moves into the table
        self._registering = threading.Lock()  # one custom-model registration at a time
        self._launches: dict[str, _Launch] = {}
        metrics.registry.register(_InstanceGauge(self))

    def _version(self, model: str, version: str | None) -> str:
        versions = [v for (m, v) in self.wants if m == model]
        if not versions:
            known = ", ".join(sorted({m for m, _ in self.wants}))
            raise AdminError(404, f"unknown model '{model}' (models: {known})")
        if version is None:
            return versions[0]
        if version not in versions:
            raise AdminError(
                404, f"model '{model}' has no version '{version}' ({', '.join(versions)})"
            )
        return version

    # -- observation -------------------------------------------------------------------------

    def instances(self) -> list[dict[str, Any]]:
        """Every instance the gateway knows, in the admin endpoint's JSON shape, by UID."""
        with self._state:
            rows = [self._slot_row(s) for s in self.table.slots()]
            rows += [self._launch_row(r) for r in self._launches.values()]
        return sorted(rows, key=lambda r: r["uid"])

    def _row(self, model: str, **fields: Any) -> dict[str, Any]:
        lim = self.limits.get(model)
        return {
            "model": model,
            "tier": self.table.tier_of(model),
            "pool": lim.pool if lim else "local",
            **fields,
            "draining": fields["state"] == "draining",
        }

    def _slot_row(self, s: Slot) -> dict[str, Any]:
        return self._row(
            s.model,
            uid=s.uid,
            version=s.version,
            state="draining" if s.draining else "ready",
            since=s.since,
            inflight=s.inflight,
            limit=s.limit,
            error=None,
        )

    def _launch_row(self, r: _Launch) -> dict[str, Any]:
        lim = self.limits.get(r.model)
        return self._row(
            r.model,
            uid=r.uid,
            version=r.version,
            state=r.state,
            since=r.since,
            inflight=0,
            limit=(lim.request_limit if lim else None) or DEFAULT_LIMIT,
            error=r.error,
            worker=r.pin[0] if r.pin else None,
        )

    def _state_of(self, uid: str, slots: dict[str, Slot]) -> str | None:
        """Call with `_state` held."""
        if uid in slots:
            return "draining" if slots[uid].draining else "ready"
        record = self._launches.get(uid)
        return record.state if record else None

    def _known(self, uids: list[str], slots: dict[str, Slot]) -> None:
        unknown = [u for u in uids if self._state_of(u, slots) is None]
        if unknown:
            raise AdminError(
                404,
                f"unknown instance {', '.join(unknown)}: the gateway neither routes nor "
                "launches it (GET /-/admin/instances lists what it knows)",
            )

    # -- launch ------------------------------------------------------------------------------

    def launch(
        self,
        model: str,
        version: str | None = None,
        count: int | None = None,
        uids: list[str] | None = None,
        pin: Pin | None = None,
    ) -> dict[str, Any]:
        """Start `count` instances on the next free UIDs (or exactly `uids`) in the background
        and return at once. UIDs already loading or ready are left alone (a repeat is a no-op);
        failed ones are launched again. No min/max check: the caller owns the limits.
        `pin`: the worker (and devices) of a placed launch, which is one instance."""
        version = self._version(model, version)
        if pin is not None and (count or len(uids or ())) > 1:
            raise AdminError(400, "worker: a placed launch is one instance; give count 1")
        if uids is not None:
            uids = _unique(uids)
            if count is not None and count != len(uids):
                raise AdminError(400, f"count {count} disagrees with the {len(uids)} uids given")
            for uid in uids:
                if (parse_uid(uid) or ())[:2] != (model, version):
                    raise AdminError(
                        400,
                        f"uid '{uid}' is not {model}--{version}--<n> (n from 1); name UIDs of "
                        f"model '{model}' version '{version}'",
                    )
        elif count is None:
            count = 1
        if uids is None and count < 1:
            raise AdminError(400, "count must be 1 or more")
        uids, started = self._begin(model, version, count or 0, uids, pin)
        return {
            "model": model,
            "version": version,
            "uids": uids,
            "started": [r.uid for r in started],
        }

    def _begin(
        self,
        model: str,
        version: str,
        count: int,
        uids: list[str] | None,
        pin: Pin | None = None,
    ) -> tuple[list[str], list[_Launch]]:
        # UIDs Xinference runs but the gateway does not know (an earlier run's) are not reused.
        taken = {i.uid for i in self.client.instances()} if uids is None else set()
        with self._state:
            slots = {s.uid: s for s in self.table.slots()}
            if uids is None:
                used = taken | set(slots) | set(self._launches)
                uids = []
                n = 1
                while len(uids) < count:
                    if (uid := instance_uid(model, version, n)) not in used:
                        uids.append(uid)
                    n += 1
            draining = [u for u in uids if self._state_of(u, slots) == "draining"]
            if draining:
                raise AdminError(
                    409,
                    f"instance {', '.join(draining)} is draining: terminate it before "
                    "launching the UID again",
                )
            want = self.wants[(model, version)]
            fresh = [u for u in uids if self._state_of(u, slots) not in ("loading", "ready")]
            started = []
            for uid, placed in zip(fresh, self._pins(want, fresh, pin), strict=True):
                previous = self._launches.get(uid)
                record = self._launches[uid] = _Launch(uid, model, version, time.time(), pin=placed)
                threading.Thread(
                    target=self._run, args=(record, want), name=f"launch {uid}", daemon=True
                ).start()
                if previous is None:
                    self.on_launched(uid)
                started.append(record)
        return uids, started

    def _pins(self, want: Want, uids: list[str], pin: Pin | None) -> list[Pin | None]:
        """The worker of each launch: the one asked for, else the placer's (counting the
        workers of launches still loading, which Xinference may not list yet), else none."""
        if pin is not None or self.placer is None or not uids:
            return [pin] * len(uids)
        loading = {
            r.uid: r.pin[0] for r in self._launches.values() if r.pin and r.state == "loading"
        }
        return list(self.placer(want, uids, loading))

    def _run(self, record: _Launch, want: Want) -> None:
        """A launch thread: register the version (one at a time: two first registrations of a
        name would collide), then bring the UID up like `xpool up` does (adopt it if running,
        relaunch it if in error), and record the outcome."""
        error = None
        try:
            with self._registering:
                self.client.ensure_registered(
                    want.model_type, want.registration, self.client.instances()
                )
            one = PinnedWant(**{**want.__dict__, "count": 1}, pinned=(record.uid,))
            ensure_instances(
                self.client,
                [one],
                timeout=self.launch_timeout,
                progress=self.log,
                place=lambda _want, _uid: record.pin,
            )
        except Exception as exc:  # a launch thread records every failure instead of dying
            error = str(exc) or type(exc).__name__
        self._landed(record, want, error)

    def _landed(self, record: _Launch, want: Want, error: str | None) -> None:
        with self._state:
            terminate = record.terminate  # then it stays listed until Xinference let it go
            if not terminate and error is None:
                lim = self.limits[record.model]
                self.table.add(
                    record.model,
                    want.model_type,
                    record.uid,
                    version=record.version,
                    tier=lim.tier,
                    limit=lim.request_limit,
                    draining=record.draining,
                    since=record.since if record.draining else None,
                )
                del self._launches[record.uid]
            elif not terminate:
                record.error, record.since = error, time.time()
        if terminate:
            self.client.terminate(record.uid, quiet=True)
            with self._state:
                if self._launches.get(record.uid) is record:
                    del self._launches[record.uid]
            self.on_terminated(record.uid)
            self.log(f"{record.uid}: terminated (asked while it loaded)")
        elif error is None:
            self.log(f"{record.uid}: ready" + (", draining" if record.draining else ""))
        else:
            self.log(f"{record.uid}: launch failed: {error}")
        record.done.set()

    # -- drain and terminate -----------------------------------------------------------------

    def drain(self, uids: list[str]) -> dict[str, Any]:
        """Stop routing new requests to `uids` at once; in-flight ones (streams) finish.
        Idempotent. A loading UID is drained as it becomes ready (never routed); a failed one
        has nothing to drain."""
        uids = _unique(uids)
        with self._state:
            slots = {s.uid: s for s in self.table.slots()}
            self._known(uids, slots)
            for uid in uids:
                record = self._launches.get(uid)
                if uid in slots:
                    self.table.mark_draining(uid)
                elif record is not None and record.state == "loading":
                    record.draining, record.since = True, time.time()
            out = {uid: self.table.inflight(uid) for uid in uids}
        for uid, inflight in out.items():
            self.log(f"{uid}: draining ({inflight} in flight)")
        return {"draining": out}

    def terminate(
        self, uids: list[str], *, force: bool = False, timed_out: bool = False
    ) -> dict[str, Any]:
        """Terminate drained instances through Xinference and forget them.

        Draining ones with requests in flight are left alone and reported in `busy`, unless
        `timed_out` (the caller's drainTimeout passed: counted in
        xpool_gateway_drain_timeouts_total) or `force`. Ready (or still loading, undrained)
        ones are refused with 409 unless `force`; failed ones are always cleaned up. A UID
        still loading is terminated by its launch thread when the load ends (`deferred`)."""
        uids = _unique(uids)
        doomed: list[tuple[str, bool]] = []  # (uid, failed launch)
        busy: dict[str, int] = {}
        interrupted: dict[str, int] = {}
        deferred: list[str] = []
        with self._state:
            slots = {s.uid: s for s in self.table.slots()}
            self._known(uids, slots)
            routed = [u for u in uids if self._state_of(u, slots) in ("ready", "loading")]
            if routed and not force:
                states = ", ".join(f"{u} is {self._state_of(u, slots)}" for u in routed)
                raise AdminError(
                    409, f"{states}: drain it first (POST /-/admin/drain), or pass force"
                )
            for uid in uids:
                record = self._launches.get(uid)
                if record is not None and record.error is not None:
                    del self._launches[uid]
                    doomed.append((uid, True))
                elif record is not None:
                    record.terminate = True
                    if not record.draining:
                        record.draining, record.since = True, time.time()
                    deferred.append(uid)
                elif (inflight := self.table.inflight(uid)) and not (force or timed_out):
                    busy[uid] = inflight
                else:
                    self.table.mark_draining(uid)
                    if inflight:
                        interrupted[uid] = inflight
                    doomed.append((uid, False))
        for uid, failed in doomed:
            if failed:
                self.client.terminate(uid, quiet=True)
            else:
                if uid in interrupted:
                    self.log(
                        f"{uid}: terminating with {interrupted[uid]} request(s) in flight"
                        + (" (drainTimeout passed)" if timed_out else " (forced)")
                    )
                self.client.terminate(uid)
                self.table.remove(uid)
                if uid in interrupted and timed_out:
                    self.metrics.drain_timeouts.labels(slots[uid].model).inc()
            self.on_terminated(uid)
            self.log(f"{uid}: terminated")
        return {
            "terminated": [uid for uid, _ in doomed],
            "busy": busy,
            "deferred": deferred,
            "interrupted": interrupted,
        }

    # -- blocking scale (xpool scale) --------------------------------------------------------

    def scale(
        self, model: str, instances: int, *, force: bool = False, version: str | None = None
    ) -> dict[str, Any]:
        """Launch up to, or drain and terminate down to, `instances` serving instances (ready
        or loading, not draining) of one version, and return when done. Scale down takes the
        highest-numbered UIDs and waits up to drainTimeout for their requests."""
        version = self._version(model, version)
        lim = self.limits[model]
        if instances < 0:
            raise AdminError(400, "instances must be 0 or more")
        if not force and not lim.min <= instances <= lim.max:
            raise AdminError(
                422,
                f"spec.models[{model}].instances: {instances} is outside min..max "
                f"({lim.min}..{lim.max}); pass --force to go beyond",
            )
        with self._lock:
            started = time.monotonic()
            current = self._serving(model, version)
            launched: list[str] = []
            terminated: list[str] = []
            timed_out: list[str] = []
            if instances > len(current):
                _, records = self._begin(model, version, instances - len(current), None)
                launched = self._await_launches(records)
            elif instances < len(current):
                terminated, timed_out = self._drain_and_terminate(current[instances:])
            return {
                "model": model,
                "version": version,
                "instances": instances,
                "launched": launched,
                "terminated": terminated,
                "drainTimeouts": timed_out,
                "seconds": round(time.monotonic() - started, 3),
            }

    def _serving(self, model: str, version: str) -> list[str]:
        with self._state:
            uids = [
                s.uid for s in self.table.slots(model) if s.version == version and not s.draining
            ]
            uids += [
                r.uid
                for r in self._launches.values()
                if (r.model, r.version, r.state) == (model, version, "loading")
            ]
        return sorted(uids, key=_n)

    def _await_launches(self, records: list[_Launch]) -> list[str]:
        """Wait for the launches; failed ones are cleaned up and raised, as a blocking call."""
        for record in records:
            record.done.wait()
        with self._state:
            failed = [r for r in records if self._launches.get(r.uid) is r and r.error]
        if failed:
            self.terminate([r.uid for r in failed])
            raise RemoteError("; ".join(f"{r.uid}: {r.error}" for r in failed))
        return [r.uid for r in records]

    def _drain_and_terminate(self, uids: list[str]) -> tuple[list[str], list[str]]:
        with self._state:
            loading = [self._launches[u] for u in uids if u in self._launches]
        self.drain(uids)
        deadline = time.monotonic() + self.drain_timeout
        for uid in uids:
            if not self.table.wait_drained(uid, max(0.0, deadline - time.monotonic())):
                self.log(
                    f"{uid}: drainTimeout ({self.drain_timeout:g} s) passed with "
                    f"{self.table.inflight(uid)} request(s) in flight; terminating anyway"
                )
        result = self.terminate(uids, timed_out=True)
        for record in loading:
            record.done.wait()
        return uids, sorted(result["interrupted"], key=_n)

    def evacuate(self, worker: str) -> list[str]:
        """Drain the instances on `worker` (an Xinference worker address) and terminate them
        once idle or after drainTimeout: what a worker pod's preStop hook and the reconciler
        do before the worker goes, here before `xpool up` stops a scaled-down worker."""
        on_it = {uid for w in self.client.workers() if w.address == worker for uid in w.instances}
        with self._state:
            on_it |= {u for u, r in self._launches.items() if r.pin and r.pin[0] == worker}
            known = {s.uid for s in self.table.slots()} | set(self._launches)
        uids = sorted(on_it & known, key=_n)
        if uids:
            self.log(f"worker {worker}: draining {', '.join(uids)} before it stops")
            self._drain_and_terminate(uids)
        return uids

    # -- canary ------------------------------------------------------------------------------

    def set_weights(self, model: str, weights: dict[str, float]) -> dict[str, Any]:
        versions = [v for (m, v) in self.wants if m == model]
        if not versions:
            raise AdminError(404, f"unknown model '{model}'")
        unknown = sorted(set(weights) - set(versions))
        if unknown:
            raise AdminError(
                404, f"model '{model}' has no version {', '.join(unknown)} ({', '.join(versions)})"
            )
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise AdminError(400, "weights must be >= 0 and not all 0")
        self.table.set_weights(model, weights)
        self.log(f"{model}: canary weights {weights}")
        return {"model": model, "weights": self.table.weights(model)}


class _InstanceGauge(Collector):
    """`xpool_instances{model,version,tier,pool,state}`, read at scrape time. Only a gateway
    with an admin endpoint (the one of `xpool up`) exports it: behind several gateway replicas
    the same instances would be counted once per replica."""

    def __init__(self, scaler: Scaler) -> None:
        self._scaler = scaler

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "xpool_instances",
            "Instances by state as the gateway sees them (loading|ready|draining|failed).",
            labels=["model", "version", "tier", "pool", "state"],
        )
        scaler = self._scaler
        counts = Counter(
            (i["model"], i["version"], i["tier"], i["pool"], i["state"]) for i in scaler.instances()
        )
        for model, version in scaler.wants:  # every declared version, zeros included
            lim = scaler.limits.get(model)
            for state in STATES:
                key = (model, version, scaler.table.tier_of(model), lim.pool if lim else "local")
                counts.setdefault((*key, state), 0)
        for labels, count in sorted(counts.items()):
            gauge.add_metric(list(labels), count)
        yield gauge
