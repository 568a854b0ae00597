"""`xpool gateway FILE`: run the gateway standalone (e.g. the gateway Deployment), routing by
the ConfigMap the reconciler writes (polled every --interval seconds), until SIGINT/SIGTERM.

The replica reports itself in its own Lease (gateway/replica_report.py) from before its first
read of the routes until after its last request ended, so the reconciler never terminates an
instance this replica may still be using."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import click

from xpool.cli.apply import connection_options
from xpool.cli.output import note
from xpool.cli.up import api_key_from_env
from xpool.config.loader import load_platform
from xpool.errors import InputError, Problem
from xpool.gateway.routing import RoutingTable


def default_replica() -> str:
    """The pod name on Kubernetes (POD_NAME, set by the rendered Deployment), else the host."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def wait_idle(table: RoutingTable, timeout: float) -> int:
    """Wait until no request is in flight (the server may still be finishing some after its
    stop returned); returns how many still are when `timeout` passed."""
    deadline = time.monotonic() + timeout
    while (busy := sum(s.inflight for s in table.slots())) and time.monotonic() < deadline:
        time.sleep(0.2)
    return busy


@click.command("gateway")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
@click.option("--configmap", default="xpool-routes", show_default=True, help="Routes ConfigMap.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.5),
    default=3.0,
    show_default=True,
    help="Seconds between two reads of the ConfigMap.",
)
@click.option("--listen", default=None, help="host:port [default: spec.gateway.listen].")
@click.option(
    "--replica",
    default=None,
    help="This replica's id, unique among the gateways; its report Lease is "
    "xpool-gateway-<id> [default: $POD_NAME, else the hostname].",
)
def gateway_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    configmap: str,
    interval: float,
    listen: str | None,
    replica: str | None,
) -> None:
    """Serve the OpenAI-compatible gateway, its routes read from a Kubernetes ConfigMap."""
    from xpool.adapters.kube_client import Connection, KubeClient
    from xpool.gateway.app import create_app
    from xpool.gateway.control import table_for
    from xpool.gateway.metrics import GatewayMetrics
    from xpool.gateway.replica_report import ReplicaReporter
    from xpool.gateway.server import GatewayServer
    from xpool.gateway.source import ConfigMapRoutingSource

    loaded = load_platform(file)
    platform = loaded.platform
    endpoint = platform.spec.xinference.endpoint
    if endpoint == "embedded":
        raise InputError(
            [
                Problem(
                    file,
                    "spec.xinference.endpoint",
                    "`xpool gateway` needs a remote Xinference endpoint; use `xpool up` for "
                    "the embedded one",
                )
            ]
        )
    ns = namespace or (platform.spec.kubernetes.namespace if platform.spec.kubernetes else "xpool")
    api_key = api_key_from_env(platform)
    gw = platform.spec.gateway
    table = table_for(platform)
    metrics = GatewayMetrics(table)
    server = GatewayServer(
        create_app(
            table,
            endpoint,
            api_key=api_key,
            timeout=gw.request_timeout,
            client_id_header=gw.client_id_header,
            metrics=metrics,
        ),
        listen or gw.listen,
    )
    stop = threading.Event()
    # From here on a SIGTERM ends the wait below, so the Lease is withdrawn on every way out.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    kube = KubeClient.connect(Connection(kubeconfig, context), log=note)
    try:
        source = ConfigMapRoutingSource(
            kube, ns, table, name=configmap, interval=interval, log=note
        )
        reporter = ReplicaReporter(
            kube, ns, table, source, replica=replica or default_replica(), log=note
        )
        reporter.start()  # counted before it can route: see ReplicaReporter.start
        try:
            source.poll_once()
            source.start()
            server.start()
            note(
                f"gateway on {server.url}, routes from ConfigMap {ns}/{configmap}, "
                f"reporting in Lease {ns}/{reporter.name}"
            )
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            # The Lease goes last: until then the requests still finishing are reported.
            server.stop()
            if busy := wait_idle(table, gw.request_timeout):
                note(f"{busy} request(s) still in flight after {gw.request_timeout:g} s")
            reporter.stop()
            source.stop()
    finally:
        kube.close()
    note("stopped")
