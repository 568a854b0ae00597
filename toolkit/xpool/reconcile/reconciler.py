"""One observe -> decide -> act pass, and the loop that repeats it while holding leadership.

A pass reads instances from its target (local `xpool up` or Kubernetes) and load from
Prometheus, asks the pure policy what to do, does it, and writes every action to the audit
log. A remote failure while observing instances stops the pass (deciding on half a picture
could drain the wrong thing); Prometheus failing only makes load "missing", which blocks
scale-down and lets the floor and drains proceed; the worker groups' replicas failing to read
leaves them unknown ({}), so the policy scales no group that pass and instances still
reconcile. Each action is attempted on its own: one
failing does not stop the others, and all are idempotent, so the next pass repairs the rest.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from xpool.errors import RemoteError
from xpool.policy.actions import (
    Action,
    Decision,
    Drain,
    Launch,
    ScaleWorkers,
    SetQueue,
    Terminate,
    as_dict,
)
from xpool.policy.decide import decide
from xpool.policy.spec import PolicySpec
from xpool.policy.state import LoadObs, Observation
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.memory_store import MemoryStore
from xpool.reconcile.metrics import ReconcilerMetrics
from xpool.reconcile.pass_result import PassResult
from xpool.reconcile.rollouts import RolloutController
from xpool.reconcile.target import InstanceTarget


@dataclass(frozen=True)
class AppliedQueueShare:
    """A share the policy decided (`share`), applied to Volcano Queue `queue`: the Queue's
    shares before and after the apply."""

    share: SetQueue
    queue: str
    before: dict[str, Any]
    after: dict[str, Any]


class QueueSink(Protocol):
    def apply(self, shares: list[SetQueue]) -> list[AppliedQueueShare]:
        """Set the queues' shares; returns the queues that changed."""
        ...


class Reconciler:
    def __init__(
        self,
        spec: PolicySpec,
        target: InstanceTarget,
        *,
        loads: Callable[[], dict[str, LoadObs]],
        store: MemoryStore,
        audit: AuditLog,
        queues: QueueSink | None = None,
        rollouts: RolloutController | None = None,
        metrics: ReconcilerMetrics | None = None,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.spec = spec
        self.target = target
        self.loads = loads
        self.store = store
        self.audit = audit
        self.queues = queues
        self.rollouts = rollouts
        self.metrics = metrics
        self.dry_run = dry_run
        self.clock = clock
        self.log = log
        self._inputs: dict[str, dict[str, Any]] = {}
        self._last_lines: dict[str, str] = {}
        self._sized: dict[str, Decision] = {}  # the last pass's, for the rollouts' sizing

    def observe(self, result: PassResult) -> Observation:
        instances = self.target.instances()
        workers = self.target.workers()
        try:
            replicas = self.target.worker_replicas()
        except RemoteError as exc:
            result.errors.append(f"worker groups: {exc}")
            replicas = {}
        try:
            loads = self.loads()
        except RemoteError as exc:
            result.errors.append(str(exc))
            loads = {
                m.name: LoadObs(missing=("qps (Prometheus unreachable)",)) for m in self.spec.models
            }
        return Observation(self.clock(), tuple(instances), loads, tuple(workers), replicas)

    def run_pass(self) -> PassResult:
        result = PassResult(started=self.clock())
        began = time.monotonic()
        try:
            obs = self.observe(result)
        except RemoteError as exc:
            result.errors.append(str(exc))
            return self._finish(result, began)
        spec = self.spec
        if self.rollouts is not None:
            try:  # deciding with stale weights could drain a canary mid-rollout: stop instead
                spec = self.rollouts.run(self.spec, obs, dry_run=self.dry_run, sized=self._sized)
            except RemoteError as exc:
                result.errors.append(f"rollouts: {exc}")
                return self._finish(result, began)
        outcome = decide(spec, obs, self.store.load())
        result.decisions = outcome.decisions
        self._sized = {d.model: d for d in outcome.decisions}
        for d in outcome.decisions:  # log a decision when its kind changes, not every pass
            shape = f"{d.active}->{d.desired} " + re.sub(r"[0-9.]+", "#", d.reason)
            if self._last_lines.get(d.model) != shape:
                self.log(f"{d.model}: {d.active} -> {d.desired}: {d.reason}")
            self._last_lines[d.model] = shape
        self._inputs = {d.model: d.inputs for d in outcome.decisions}
        if self.metrics is not None:
            self.metrics.observed(spec, obs, outcome.decisions)
        if self.dry_run:
            result.done = [
                self._record(a, obs, planned=True)
                for a in outcome.actions
                if not isinstance(a, SetQueue)
            ]
            return self._finish(result, began)
        shares = [a for a in outcome.actions if isinstance(a, SetQueue)]
        for action in outcome.actions:
            if isinstance(action, SetQueue):
                continue
            try:
                record = self._act(action, obs)
            except RemoteError as exc:
                result.errors.append(f"{action.kind} {_subject(action)}: {exc}")
                continue
            if record is None:
                result.waiting.append(_subject(action))
            else:
                self._done(result, record)
        if self.queues is not None and shares:
            try:
                for change in self.queues.apply(shares):
                    self._done(result, self._queue_record(change, obs))
            except RemoteError as exc:
                result.errors.append(f"queue shares: {exc}")
        self.store.save(outcome.memory)
        return self._finish(result, began)

    def _done(self, result: PassResult, record: dict[str, Any]) -> None:
        """Audit each action as soon as it is done, so a crash mid-pass loses no record."""
        result.done.append(record)
        self.audit.write(record)
        self.log(f"{record['action']} {record['subject']}: {record['reason']}")

    def _finish(self, result: PassResult, began: float) -> PassResult:
        result.seconds = time.monotonic() - began
        if self.metrics is not None:
            self.metrics.passed(result)
        return result

    def _act(self, action: Action, obs: Observation) -> dict[str, Any] | None:
        if isinstance(action, Launch):
            uids = self.target.launch(action)
            return self._record(action, obs, after={"launched": uids})
        if isinstance(action, Drain):
            self.target.drain(action)
            return self._record(action, obs, after={"state": "draining"})
        if isinstance(action, Terminate):
            if not self.target.terminate(action):
                return None
            return self._record(action, obs, after={"state": "terminated"})
        if isinstance(action, ScaleWorkers):
            if not self.target.scale_workers(action):
                return None
            return self._record(action, obs, after={"replicas": action.replicas})
        raise AssertionError(action)

    def _record(
        self,
        action: Action,
        obs: Observation,
        *,
        after: dict[str, Any] | None = None,
        planned: bool = False,
    ) -> dict[str, Any]:
        fields = as_dict(action)
        model = fields.get("model")
        mine = [i for i in obs.instances if i.model == model]
        before: dict[str, Any] = {
            "instances": {
                s: sum(1 for i in mine if i.state == s) for s in ("loading", "ready", "draining")
            }
        }
        if isinstance(action, ScaleWorkers):
            before["replicas"] = action.previous
        uid = fields.get("uid")
        if uid:
            inst = next((i for i in mine if i.uid == uid), None)
            before["state"] = inst.state if inst else None
            before["inflight"] = inst.inflight if inst else None
        return {
            "time": obs.now,
            "action": action.kind,
            "subject": _subject(action),
            "reason": action.reason,
            "planned": planned,
            "fields": fields,
            "inputs": self._inputs.get(str(model), {}),
            "before": before,
            "after": after or {},
        }

    def _queue_record(self, change: AppliedQueueShare, obs: Observation) -> dict[str, Any]:
        return {
            "time": obs.now,
            "action": "set-queue",
            "subject": change.queue,
            "reason": change.share.reason,
            "planned": False,
            "fields": as_dict(change.share),
            "inputs": {},
            "before": change.before,
            "after": change.after,
        }


def _subject(action: Action) -> str:
    if isinstance(action, Launch):
        on = f" on {action.worker}" if action.worker else ""
        return f"{action.model}--{action.version} x{action.count}{on}"
    if isinstance(action, SetQueue):
        return f"{action.tier}/{action.pool}"
    if isinstance(action, ScaleWorkers):
        return f"{action.job}/{action.task}"
    return action.uid


def run_loop(
    reconciler: Reconciler,
    *,
    interval: float,
    stop: threading.Event,
    is_leader: Callable[[], bool],
    log: Callable[[str], None],
    renew_every: float = 5.0,
) -> None:
    """Repeat passes every `interval` seconds while leader; a standby only re-checks.

    Leadership is renewed every `renew_every` seconds between passes too: a Lease renewed only
    once per pass would expire whenever the interval reaches the lease duration (15 s), and a
    standby would take over while this one still acts.
    """
    while not stop.is_set():
        began = time.monotonic()
        if is_leader():
            result = reconciler.run_pass()
            for error in result.errors:
                log(f"pass error: {error}")
        while not stop.is_set():
            left = interval - (time.monotonic() - began)
            if left <= 0:
                break
            if stop.wait(min(left, renew_every)):
                break
            is_leader()
