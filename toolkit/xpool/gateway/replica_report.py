"""Each gateway replica's report to the reconciler: the routes generation it has applied and
its in-flight requests per instance, in its own `coordination.k8s.io/v1` Lease.

Several replicas route from one ConfigMap (`source.py`); none of them can tell alone whether a
draining instance is idle. So each replica renews the Lease `xpool-gateway-<replica>` every
`interval` seconds (label `app.kubernetes.io/component=gateway-report`, `xpool.io/routes=<the
ConfigMap>`, holderIdentity = the replica) with two annotations:

- `xpool.io/routes-generation`: the routes.json generation its table follows (absent until it
  has read the ConfigMap once);
- `xpool.io/inflight`: JSON {uid: requests in flight} for every instance its table knows.

The generation is read before the counts: a report of generation G then promises that every
instance draining at G gets no new requests on this replica and that the counts include every
request still running on it. The reconciler (`reconcile/kube_target.py`) sums the reports of
live replicas. A replica reports before its first read of the routes (`ReplicaReporter.start`),
so none can route without being counted. A stopped replica deletes its Lease, so it stops
counting at once; a crashed one stops counting when its Lease expires (`ReplicaReport.live`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from xpool.adapters.kube_client import KubeClient
from xpool.adapters.leases import (
    Lease,
    LeaseSpec,
    apply_lease,
    delete_lease,
    list_leases,
    micro_time,
    parse_time,
)
from xpool.errors import InputError, RemoteError
from xpool.gateway.routing import RoutingTable
from xpool.gateway.source import ConfigMapRoutingSource
from xpool.render.object_names import gateway_report_lease as lease_name

COMPONENT = "gateway-report"
COMPONENT_LABEL = "app.kubernetes.io/component"
ROUTES_LABEL = "xpool.io/routes"
GENERATION_ANNOTATION = "xpool.io/routes-generation"
INFLIGHT_ANNOTATION = "xpool.io/inflight"
FIELD_MANAGER = "xpool-gateway"
UNKNOWN_GENERATION = -1  # never read the routes, or an unreadable report: blocks every drain
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ReplicaReport:
    replica: str
    generation: int  # routes generation applied; UNKNOWN_GENERATION when not known
    inflight: dict[str, int] = field(default_factory=dict)
    renewed: float | None = None  # unix seconds of the last renewal (see `live`)
    duration: float = 0.0  # leaseDurationSeconds

    def live(self, now: float, skew: float) -> bool:
        """Still counts at `now` (the reconciler's clock). `renewed` is the later of the
        replica's renewTime (its own clock) and the API server's managedFields time of the
        reporter's last write (the server's clock, whole seconds); the Lease counts until
        `duration + skew` after it. `skew`
        must exceed the clock difference between the reconciler and the replicas or the API
        server: a live replica whose clock is further behind than that would stop counting,
        and an instance could be terminated under its requests. A generous `skew` only makes
        a crashed replica block drains a little longer."""
        return self.renewed is not None and now <= self.renewed + self.duration + skew


def parse_report(lease: Lease) -> ReplicaReport:
    """A Lease as a report; anything unreadable makes the generation unknown, so the replica
    blocks drains (as busy) until it reports properly or its Lease expires."""
    notes = lease.annotations
    generation, inflight = UNKNOWN_GENERATION, {}
    try:
        generation = int(notes[GENERATION_ANNOTATION])
        raw = json.loads(notes.get(INFLIGHT_ANNOTATION) or "{}")
        inflight = {str(uid): int(n) for uid, n in raw.items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        generation, inflight = UNKNOWN_GENERATION, {}
    renewed = parse_time(lease.spec.renew_time)
    known = [t for t in (renewed, *lease.written_by(FIELD_MANAGER)) if t is not None]
    duration = lease.spec.duration
    return ReplicaReport(
        replica=lease.spec.holder or lease.name,
        generation=generation,
        inflight=inflight,
        renewed=max(known) if known else None,
        duration=float(duration) if duration is not None else 0.0,
    )


def read_reports(kube: KubeClient, namespace: str, routes: str) -> list[ReplicaReport]:
    """Every report Lease of the gateways following ConfigMap `routes`, live or not."""
    leases = list_leases(kube, namespace, {COMPONENT_LABEL: COMPONENT, ROUTES_LABEL: routes})
    return sorted((parse_report(lease) for lease in leases), key=lambda r: r.replica)


def live_reports(reports: Iterable[ReplicaReport], now: float, skew: float) -> list[ReplicaReport]:
    return [r for r in reports if r.live(now, skew)]


class ReplicaReporter:
    """Renews this replica's report Lease from its routing table and routes source.

    Stop it only after the HTTP server has finished its requests: once the Lease is deleted,
    the reconciler no longer waits for this replica."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        table: RoutingTable,
        source: ConfigMapRoutingSource,
        *,
        replica: str,
        interval: float = 2.0,
        duration: int = 15,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        name = lease_name(replica)
        if len(name) > 253 or not _NAME.match(name):
            raise InputError(
                f"gateway replica id {replica!r}: not usable in the Lease name {name!r}; use "
                "lower-case letters, digits, '-' and '.' (e.g. the pod name)"
            )
        if not 0 < interval < duration:
            raise InputError(
                f"gateway report interval {interval:g} s: must be above 0 and below the Lease "
                f"duration ({duration} s), or the Lease expires between renewals"
            )
        self.kube = kube
        self.namespace = namespace
        self.table = table
        self.source = source
        self.replica = replica
        self.name = name
        self.interval = interval
        self.duration = duration
        self._clock = clock
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def annotations(self) -> dict[str, str]:
        """The report as it should be now."""
        generation = self.source.generation  # first: see the module docstring
        inflight = {slot.uid: slot.inflight for slot in self.table.slots()}
        annotations = {INFLIGHT_ANNOTATION: json.dumps(inflight, sort_keys=True)}
        if generation is not None:
            annotations[GENERATION_ANNOTATION] = str(generation)
        return annotations

    def report_once(self) -> None:
        """Create or renew the Lease (server-side apply: one idempotent call)."""
        apply_lease(
            self.kube,
            self.namespace,
            self.name,
            LeaseSpec(
                holder=self.replica,
                duration=self.duration,
                renew_time=micro_time(self._clock()),
            ),
            manager=FIELD_MANAGER,
            labels={
                COMPONENT_LABEL: COMPONENT,
                ROUTES_LABEL: self.source.name,
                "app.kubernetes.io/part-of": "xpool",
            },
            annotations=self.annotations(),
        )

    def withdraw(self) -> None:
        """Delete the Lease: this replica stops counting at once (absent is fine)."""
        delete_lease(self.kube, self.namespace, self.name)

    def start(self) -> ReplicaReporter:
        """Report once now (RemoteError when that fails), then every `interval` seconds.
        Start it before the routes source's first poll: a replica must be counted before it
        can route anything, or a drain could finish without waiting for it."""
        self.report_once()
        self._thread = threading.Thread(target=self._run, name="replica-report", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing and withdraw. If the delete fails, the Lease expires instead."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + self.kube.policy.max_seconds + 5)
            self._thread = None
        try:
            self.withdraw()
        except RemoteError as exc:
            self.log(f"report: {exc}; the Lease expires in {self.duration} s instead")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.report_once()
            except RemoteError as exc:
                self.log(f"report: {exc}; retrying in {self.interval:g} s")
