"""`xpool gateway`: one standalone gateway replica (the gateway StatefulSet's pods), routing by
the ConfigMap the reconciler writes, until told to stop.

The replica reports itself in its own Lease from before its first read of the routes until
after its last request ended, so the reconciler never terminates an instance this replica may
still be using (gateway/replica_report.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from xpool.actions.flag_values import check_listen
from xpool.actions.runtime import Runtime
from xpool.adapters.object_store import ObjectStore, open_store
from xpool.adapters.xinference import api_key_from_env
from xpool.errors import InputError, Problem
from xpool.gateway.app import create_app
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.limits import RequestLimits
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.replica_report import ReplicaReporter
from xpool.gateway.routing import RoutingTable
from xpool.gateway.server import GatewayServer
from xpool.gateway.source import ConfigMapRoutingSource
from xpool.gateway.wiring import client_keys, table_for
from xpool.logs import get_logger
from xpool.resolve import resolve_platform

log = get_logger(__name__)
# What the routes source and the Lease report say, under their own modules' names.
source_log = get_logger(ConfigMapRoutingSource.__module__)
report_log = get_logger(ReplicaReporter.__module__)
MIN_INTERVAL = 0.5


@dataclass(frozen=True)
class GatewayOptions:
    file: str
    namespace: str | None = None
    configmap: str = "xpool-routes"
    interval: float = 3.0  # seconds between two reads of the routes
    listen: str | None = None  # default: spec.gateway.listen
    replica: str | None = None  # default: $POD_NAME, else the hostname

    def validate(self) -> None:
        if self.interval < MIN_INTERVAL:
            raise InputError([Problem("--interval", "", f"use at least {MIN_INTERVAL:g} s")])
        if self.listen is not None:
            check_listen("--listen", self.listen)


def default_replica() -> str:
    """The pod name on Kubernetes (POD_NAME, set by the rendered StatefulSet), else the host."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def runs_batches(replica: str) -> bool:
    """Whether this replica runs the stored batches: the StatefulSet's first pod (`NAME-0`),
    or a gateway that is no StatefulSet pod (one process). One runner per store."""
    return not _is_replica(replica) or replica.rpartition("-")[2] == "0"


def batch_store_for(location: str, replica: str) -> tuple[ObjectStore | None, str | None]:
    """The Batch API's store, or None and why not. A directory store serves one process only:
    on a StatefulSet replica it would be the pod's own disk, lost with the pod and unseen by
    the replica that runs the batches, so the Batch API stays off until the store is s3://."""
    if location.startswith("s3://") or not _is_replica(replica):
        # a directory name is under the working directory
        return open_store(location, Path.cwd()), None
    reason = (
        f"spec.batch.store is the directory {location!r}, which replica {replica} does not "
        "share with the others; set it to s3://bucket/prefix"
    )
    log.warning("batch API off", extra={"reason": reason})
    return None, reason


def _is_replica(name: str) -> bool:
    _, dash, ordinal = name.rpartition("-")
    return bool(dash) and ordinal.isdigit()


def wait_idle(table: RoutingTable, timeout: float) -> int:
    """Wait until no request is in flight (the server may still be finishing some after its
    stop returned); returns how many still are when `timeout` passed."""
    deadline = time.monotonic() + timeout
    while (busy := sum(s.inflight for s in table.slots())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return busy


def run_gateway(options: GatewayOptions, runtime: Runtime, stop: threading.Event) -> None:
    """Serve until `stop` is set, then stop taking requests, let the ones in flight finish
    (up to spec.gateway.requestTimeout) and withdraw the report Lease last."""
    resolved = resolve_platform(options.file, namespace=options.namespace)
    platform, ns = resolved.platform, resolved.namespace
    endpoint = platform.spec.xinference.endpoint
    if endpoint == "embedded":
        raise InputError(
            [
                resolved.problem(
                    ("spec", "xinference", "endpoint"),
                    "`xpool gateway` needs a remote Xinference endpoint; use `xpool up` for "
                    "the embedded one",
                )
            ]
        )
    gw = platform.spec.gateway
    table = table_for(platform)
    replica = options.replica or default_replica()
    batch_store, batch_off = batch_store_for(platform.spec.batch.store, replica)
    app = create_app(
        table,
        endpoint,
        api_key=api_key_from_env(platform),
        timeout=gw.request_timeout,
        client_id_header=gw.client_id_header,
        metrics=GatewayMetrics(table),
        limits=RequestLimits.of(gw),
        client_keys=client_keys(platform),
        batch_store=batch_store,
        batch_limits=BatchLimits.of(platform.spec.batch),
        run_batches=runs_batches(replica),
        batch_off=batch_off,
    )
    server = GatewayServer(app, options.listen or gw.listen)
    routes = f"{ns}/{options.configmap}"
    kube = runtime.kube()
    try:
        source = ConfigMapRoutingSource(
            kube,
            ns,
            table,
            name=options.configmap,
            interval=options.interval,
            log=partial(source_log.warning, extra={"configmap": routes}),
        )
        reporter = ReplicaReporter(
            kube,
            ns,
            table,
            source,
            replica=replica,
            log=partial(report_log.warning, extra={"replica": replica}),
        )
        reporter.start()  # counted before it can route: see ReplicaReporter.start
        try:
            source.poll_once()
            source.start()
            server.start()
            lease = f"{ns}/{reporter.name}"
            log.info(
                f"gateway on {server.url}, routes from ConfigMap {routes}, "
                f"reporting in Lease {lease}",
                extra={"url": server.url, "configmap": routes, "lease": lease},
            )
            while not stop.wait(1):
                pass
        finally:
            # The Lease goes last: until then the requests still finishing are reported.
            server.stop()
            if busy := wait_idle(table, gw.request_timeout):
                log.warning(
                    f"{busy} request(s) still in flight after {gw.request_timeout:g} s",
                    extra={"inflight": busy},
                )
            reporter.stop()
            source.stop()
    finally:
        kube.close()
    log.info("stopped")
