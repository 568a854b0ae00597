"""Kubernetes as the reconciler's instance target: Xinference's instances, joined with the routes
ConfigMap every gateway replica follows and the reports those replicas renew.

- Existence and health come from Xinference (one model UID per instance, DESIGN.md fact 1);
  routing state (`loading`, `ready`, `draining`) from `routes.json` (format: gateway/source.py).
- `instances()` first syncs the ConfigMap with Xinference (`sync_routes`): an instance that
  became READY is routed from that pass on, one that failed is no longer routed, and one that
  Xinference no longer lists is forgotten. Each change increments the document's generation.
- `drain()` marks an instance `draining` at a new generation G. It counts as drained only when
  every live gateway replica reports (gateway/replica_report.py) that it has applied a
  generation >= G and has 0 requests in flight on it; until then its in-flight count is at
  least 1 (unknown = busy), so the policy waits or times out. Replicas that never knew the
  instance report nothing for it, which is 0 once they have applied G.
- `terminate()` stops a drained (or timed-out) instance in Xinference first and then removes it
  from the ConfigMap, so a crash in between leaves an entry the next sync removes, never a
  running instance that sync would route again.
- `workers()` joins the supervisor's workers to the serving worker pods by pod IP
  (adapters/worker_pods.py), so the policy places each instance on a worker of its tier;
  `instances()` then also says which worker each instance runs on. Each worker also names
  its Volcano Job, task and index there, which `worker_replicas()` and `scale_workers()`
  read and patch (adapters/worker_jobs.py).
- `launch()` registers the version's custom model, submits the launches (on the worker and
  devices a placed Launch names) with
  `wait_ready=false` (Xinference 4.1.0's POST /v1/models takes it and lists the UID as CREATING
  at once) and records them as `loading`; nothing waits, so a one-shot `--once` pass may exit.

The ConfigMap is written by read-modify-write: server-side apply (field manager
`xpool-reconciler`) carrying the resourceVersion read as a precondition; on 409 it is read
again and the change re-applied. Apply also creates it when absent. One writer is assumed: the
reconciler holding the leader Lease. Gateway replicas must create their report Lease before
their first read of the routes (ReplicaReporter.start), so no replica can route without being
counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from xpool.adapters.configmaps import read_configmap, write_configmap
from xpool.adapters.kube_client import KubeClient
from xpool.adapters.worker_jobs import read_replicas, scale_task
from xpool.adapters.worker_pods import list_worker_pods
from xpool.adapters.xinference import Instance, XinferenceClient
from xpool.errors import InputError, RemoteError
from xpool.gateway.replica_report import ReplicaReport, live_reports, read_reports
from xpool.gateway.source import DATA_KEY, routes_generation
from xpool.policy.actions import Drain, Launch, ScaleWorkers, Terminate
from xpool.policy.state import InstanceObs, InstanceState, WorkerObs
from xpool.render.instances import Want, instance_uid, parse_uid

FIELD_MANAGER = "xpool-reconciler"
ROUTES_LABELS = {"app.kubernetes.io/part-of": "xpool", "app.kubernetes.io/component": "routes"}


@dataclass
class Routes:
    """routes.json being edited: every change stamps the generation the write will carry."""

    doc: dict[str, Any]
    changed: bool = False

    @property
    def generation(self) -> int:
        return routes_generation(self.doc)

    @property
    def pending(self) -> int:
        """The generation this edit writes (the document's is bumped at the first change)."""
        return self.generation if self.changed else self.generation + 1

    def entries(self) -> list[dict[str, Any]]:
        return [i for m in self.doc.get("models", []) for i in m.get("instances", [])]

    def find(self, uid: str) -> dict[str, Any] | None:
        return next((i for i in self.entries() if i.get("uid") == uid), None)

    def set_state(
        self, uid: str, state: str, now: float, *, model_type: str, limit: int | None
    ) -> None:
        """Put `uid` in `state` since `now`; nothing changes when it already is."""
        entry = self.find(uid)
        if entry is not None and entry.get("state", "ready") == state:
            return
        if entry is None:
            model, version, _ = _parsed(uid)
            entry = {"uid": uid, "version": version}
            if limit:
                entry["limit"] = limit
            self._model(model, model_type).setdefault("instances", []).append(entry)
        generation = self.pending
        entry.update(state=state, since=now, generation=generation)
        self._stamp(generation)

    def remove(self, uid: str) -> None:
        for model in self.doc.get("models", []):
            kept = [i for i in model.get("instances", []) if i.get("uid") != uid]
            if len(kept) != len(model.get("instances", [])):
                model["instances"] = kept
                self._stamp(self.pending)

    def set_weights(self, name: str, weights: dict[str, float]) -> None:
        """Weights of a model the routes already list (a model without instances has none)."""
        model = next((m for m in self.doc.get("models", []) if m.get("model") == name), None)
        if model is not None and model.get("weights") != weights:
            model["weights"] = dict(weights)
            self._stamp(self.pending)

    def _model(self, name: str, model_type: str) -> dict[str, Any]:
        models = self.doc.setdefault("models", [])
        found = next((m for m in models if m.get("model") == name), None)
        if found is None:
            found = {"model": name, "type": model_type, "instances": []}
            models.append(found)
        return found

    def _stamp(self, generation: int) -> None:
        self.doc["generation"] = generation
        self.changed = True

    def text(self) -> str:
        for model in self.doc.get("models", []):
            model.get("instances", []).sort(key=lambda i: str(i.get("uid")))
        self.doc.get("models", []).sort(key=lambda m: str(m.get("model")))
        return json.dumps(self.doc, indent=1, sort_keys=True)


def _parsed(uid: str) -> tuple[str, str, int]:
    parsed = parse_uid(uid)
    if parsed is None:
        raise InputError(f"instance {uid!r}: not an xpool instance UID (<model>--<version>--<n>)")
    return parsed


# -- the handshake (pure) ----------------------------------------------------------------------


def drain_inflight(uid: str, marked: int, reports: Iterable[ReplicaReport]) -> int:
    """In flight on draining `uid` as the policy must see it: the sum over live replicas' reports,
    and at least 1 while any of them has not applied generation `marked` (the one that made it
    draining), since that replica may still be routing new requests to it."""
    reports = list(reports)
    total = sum(max(0, r.inflight.get(uid, 0)) for r in reports)
    if any(r.generation < marked for r in reports):
        return max(total, 1)
    return total


def entry_generation(entry: Mapping[str, Any], current: int) -> int:
    """The generation an entry entered its state at; without one (another writer), the
    document's `current` generation, so the drain waits for every replica to apply it."""
    value = entry.get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else current


def sync_routes(
    routes: Routes, running: Iterable[Instance], wants: Mapping[tuple[str, str], Want], now: float
) -> None:
    """Make the routes follow Xinference: READY -> routed (unless draining), loading -> known
    as loading, ERROR while routed -> draining (no new requests), gone -> forgotten."""
    listed: set[str] = set()
    for inst in running:
        listed.add(inst.uid)
        model, version, _ = _parsed(inst.uid)
        entry = routes.find(inst.uid)
        state = entry.get("state", "ready") if entry else None
        model_type, limit = _routing(wants, model, version)
        if inst.ready and state in (None, "loading"):
            routes.set_state(inst.uid, "ready", now, model_type=model_type, limit=limit)
        elif inst.loading and state is None:
            routes.set_state(inst.uid, "loading", now, model_type=model_type, limit=limit)
        elif not (inst.ready or inst.loading) and state == "ready":
            routes.set_state(inst.uid, "draining", now, model_type=model_type, limit=limit)
    for entry in routes.entries():
        if entry.get("uid") not in listed:
            routes.remove(str(entry.get("uid")))


def observe(
    doc: dict[str, Any], running: Iterable[Instance], reports: list[ReplicaReport], now: float
) -> list[InstanceObs]:
    """Instances as the policy sees them; `reports` are the live replicas' (after sync)."""
    routes = Routes(doc)
    out = []
    for inst in running:
        model, version, _ = _parsed(inst.uid)
        entry = routes.find(inst.uid) or {}
        routed = entry.get("state", "ready") if entry else None
        error = None
        state: InstanceState
        if not (inst.ready or inst.loading):
            state, error = "failed", inst.error or f"Xinference reports {inst.status}"
        elif routed == "draining":
            state = "draining"
        elif routed == "ready" or inst.ready:
            state = "ready"  # also while Xinference UPDATEs it: the gateways still route to it
        else:
            state = "loading"
        if routed == "draining":
            marked = entry_generation(entry, routes.generation)
            inflight = drain_inflight(inst.uid, marked, reports)
        else:
            inflight = sum(max(0, r.inflight.get(inst.uid, 0)) for r in reports)
        since = entry.get("since")
        out.append(
            InstanceObs(
                uid=inst.uid,
                model=model,
                version=version,
                state=state,
                since=float(since) if isinstance(since, int | float) else now,
                inflight=inflight,
                error=error,
            )
        )
    return out


def _routing(
    wants: Mapping[tuple[str, str], Want], model: str, version: str
) -> tuple[str, int | None]:
    """(Xinference model type, per-instance request limit) of a version of a wanted model; a
    version the platform file no longer lists takes the model's type and no limit."""
    want = wants.get((model, version))
    if want is None:
        other = next(w for (m, _), w in wants.items() if m == model)
        return other.model_type, None
    limit = want.launch.get("request_limits")
    return want.model_type, limit if isinstance(limit, int) else None


def free_uids(model: str, version: str, used: set[str], count: int) -> list[str]:
    """The `count` lowest-numbered UIDs of the version that are not in `used`."""
    out: list[str] = []
    n = 1
    while len(out) < count:
        uid = instance_uid(model, version, n)
        if uid not in used:
            out.append(uid)
        n += 1
    return out


# -- the target --------------------------------------------------------------------------------


class KubeTarget:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        xinference: XinferenceClient,
        wants: dict[tuple[str, str], Want],
        *,
        routes: str = "xpool-routes",
        clock: Callable[[], float] = time.time,
        skew: float = 30.0,
        attempts: int = 5,
        worker_resources: Mapping[str, str] | None = None,
    ) -> None:
        """`worker_resources` (pool -> accelerator resource name): observe the worker pods
        and place launches on them; without it Xinference places (as `xpool worker drain`,
        which places nothing, runs it)."""
        self.kube = kube
        self.namespace = namespace
        self.xinference = xinference
        self.wants = wants
        self.routes = routes
        self.clock = clock
        self.skew = skew  # see ReplicaReport.live
        self.attempts = attempts
        self._models = {m for m, _ in wants}
        self.worker_resources = worker_resources

    # -- InstanceTarget ------------------------------------------------------------------------

    def instances(self) -> list[InstanceObs]:
        doc, running = self.sync()
        observed = observe(doc, running, self.reports(), self.clock())
        if self.worker_resources is None:
            return observed
        where = {
            uid: (w.address, d) for w in self.xinference.workers() for uid, d in w.instances.items()
        }
        return [
            replace(i, worker=where[i.uid][0], devices=where[i.uid][1]) if i.uid in where else i
            for i in observed
        ]

    def workers(self) -> list[WorkerObs]:
        """The supervisor's workers that run in a serving worker pod (joined by pod IP), with
        the pod's tier, pool, node and accelerators; a worker of a pod being deleted, or of
        no pod of ours, is left out, so nothing is placed on it."""
        if self.worker_resources is None:
            return []
        pods = {p.ip: p for p in list_worker_pods(self.kube, self.namespace, self.worker_resources)}
        out = []
        for worker in self.xinference.workers():
            pod = pods.get(worker.address.rpartition(":")[0])
            if pod is not None:
                out.append(
                    WorkerObs(
                        worker.address,
                        pod.pool,
                        pod.tier,
                        pod.node,
                        pod.accelerators,
                        pod.job,
                        pod.task,
                        pod.index,
                    )
                )
        return out

    def worker_replicas(self) -> dict[tuple[str, str], int]:
        """The worker Jobs' tasks' replicas; {} without `worker_resources` (nothing placed,
        nothing scaled)."""
        if self.worker_resources is None:
            return {}
        return read_replicas(self.kube, self.namespace)

    def scale_workers(self, action: ScaleWorkers) -> bool:
        return scale_task(self.kube, self.namespace, action.job, action.task, action.replicas)

    def launch(self, action: Launch) -> list[str]:
        want = self.wants.get((action.model, action.version))
        if want is None:
            raise InputError(
                f"launch {action.model} version {action.version}: not a model version of the "
                "platform file; add it under spec.models or fix the policy's model spec"
            )
        running = self.xinference.instances()
        used = {i.uid for i in running} | {str(e.get("uid")) for e in self._current().entries()}
        uids = free_uids(action.model, action.version, used, action.count)
        self.xinference.ensure_registered(want.model_type, want.registration, running)
        submitted: list[str] = []
        model_type, limit = _routing(self.wants, action.model, action.version)

        def record(routes: Routes) -> None:
            for uid in submitted:
                if routes.find(uid) is None:
                    routes.set_state(
                        uid, "loading", self.clock(), model_type=model_type, limit=limit
                    )

        try:
            for uid in uids:
                self.xinference.submit(
                    want.launch,
                    uid,
                    worker_ip=action.worker,
                    gpu_idx=list(action.devices) if action.worker and action.devices else None,
                )
                submitted.append(uid)
        finally:
            if submitted:
                self.edit_routes(record)
        return uids

    def drain(self, action: Drain) -> None:
        model, version, _ = _parsed(action.uid)
        if model not in self._models:
            raise InputError(f"drain {action.uid}: model {model!r} is not in the platform file")
        model_type, limit = _routing(self.wants, model, version)
        self.edit_routes(
            lambda r: r.set_state(
                action.uid, "draining", self.clock(), model_type=model_type, limit=limit
            )
        )

    def drain_all(self, uids: Iterable[str]) -> None:
        """Mark each of `uids` (of the platform's models) draining in one write, so one
        generation covers them all: a worker's instances before its pod stops
        (actions/worker_drain.py). One not routed yet is added as draining, so a sync never
        routes it once it is ready."""
        marks = [(uid, *_routing(self.wants, *_parsed(uid)[:2])) for uid in uids]

        def mark(routes: Routes) -> None:
            for uid, model_type, limit in marks:
                routes.set_state(uid, "draining", self.clock(), model_type=model_type, limit=limit)

        self.edit_routes(mark)

    def inflight_of(self, uids: Iterable[str]) -> dict[str, int]:
        """In flight on each of `uids` as the drain handshake counts it (0 once it left the
        routes, e.g. the reconciler terminated it; at least 1 while it is still routed or a
        live replica has not applied its drain)."""
        routes, reports = self._current(), self.reports()
        out = {}
        for uid in uids:
            entry = routes.find(uid)
            if entry is None:
                out[uid] = 0
            elif entry.get("state", "ready") != "draining":
                out[uid] = max(1, sum(max(0, r.inflight.get(uid, 0)) for r in reports))
            else:
                marked = entry_generation(entry, routes.generation)
                out[uid] = drain_inflight(uid, marked, reports)
        return out

    def routes_exist(self) -> bool:
        return read_configmap(self.kube, self.namespace, self.routes) is not None

    def terminate(self, action: Terminate) -> bool:
        routes = self._current()
        entry = routes.find(action.uid)
        if entry is not None and not action.timed_out:
            state = entry.get("state", "ready")
            if state == "ready":
                return False  # routed: it must be drained first
            marked = entry_generation(entry, routes.generation)
            if state == "draining" and drain_inflight(action.uid, marked, self.reports()) > 0:
                return False
        self.xinference.terminate(action.uid)
        self.edit_routes(lambda r: r.remove(action.uid))
        return True

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self.edit_routes(lambda r: r.set_weights(model, weights))

    # -- routes and reports --------------------------------------------------------------------

    def sync(self) -> tuple[dict[str, Any], list[Instance]]:
        """Bring the routes in line with Xinference; returns the routes document and
        Xinference's instances of the platform's models (xpool's UID scheme only)."""
        running = [
            i
            for i in self.xinference.instances()
            if (parsed := parse_uid(i.uid)) is not None and parsed[0] in self._models
        ]
        now = self.clock()
        doc = self.edit_routes(lambda r: sync_routes(r, running, self.wants, now))
        return doc, running

    def reports(self) -> list[ReplicaReport]:
        """The live gateway replicas' reports."""
        everyone = read_reports(self.kube, self.namespace, self.routes)
        return live_reports(everyone, self.clock(), self.skew)

    def _doc(self, obj: dict[str, Any] | None) -> dict[str, Any]:
        if obj is None:
            # A recreated ConfigMap continues after the highest generation any replica has
            # applied, or that replica would look up to date with the new document.
            applied = [r.generation for r in read_reports(self.kube, self.namespace, self.routes)]
            return {"generation": max([0, *applied]), "models": []}
        raw = (obj.get("data") or {}).get(DATA_KEY, "{}")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            doc = None
            problem = f"is not JSON ({exc})"
        else:
            problem = "is not a JSON object"
        if not isinstance(doc, dict):
            raise RemoteError(
                f"ConfigMap {self.namespace}/{self.routes}: {DATA_KEY} {problem}; fix or "
                "delete it (the gateways keep their last routes meanwhile)"
            )
        return doc

    def _current(self) -> Routes:
        return Routes(self._doc(read_configmap(self.kube, self.namespace, self.routes)))

    def edit_routes(self, change: Callable[[Routes], None]) -> dict[str, Any]:
        """Read routes.json, let `change` edit it through `Routes` (whose methods stamp the next
        generation), write it if changed; on a conflict read again and re-apply `change`.
        Returns the document as written (or read, when unchanged)."""
        for _ in range(self.attempts):
            obj = read_configmap(self.kube, self.namespace, self.routes)
            routes = Routes(self._doc(obj))
            change(routes)
            if not routes.changed:
                return routes.doc
            if write_configmap(
                self.kube,
                self.namespace,
                self.routes,
                {DATA_KEY: routes.text()},
                manager=FIELD_MANAGER,
                based_on=obj,  # no concurrent change is overwritten
                labels=ROUTES_LABELS,
            ):
                return routes.doc
        raise RemoteError(
            f"ConfigMap {self.namespace}/{self.routes} changed under each of {self.attempts} "
            "writes; is another reconciler writing it? (only the leader should)"
        )
