"""`xpool gateway FILE`: run the gateway standalone (e.g. the gateway Deployment), routing by
the ConfigMap the reconciler writes (polled every --interval seconds), until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading

import click

from xpool.cli.apply import connection_options
from xpool.cli.output import note
from xpool.cli.up import api_key_from_env
from xpool.config.loader import load_platform
from xpool.errors import InputError, Problem


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
def gateway_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    configmap: str,
    interval: float,
    listen: str | None,
) -> None:
    """Serve the OpenAI-compatible gateway, its routes read from a Kubernetes ConfigMap."""
    from xpool.adapters.kube_client import Connection, KubeClient
    from xpool.gateway.app import create_app
    from xpool.gateway.control import table_for
    from xpool.gateway.metrics import GatewayMetrics
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
    kube = KubeClient.connect(Connection(kubeconfig, context), log=note)
    source = ConfigMapRoutingSource(kube, ns, table, name=configmap, interval=interval, log=note)
    source.poll_once()
    source.start()
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
    server.start()
    note(f"gateway on {server.url}, routes from ConfigMap {ns}/{configmap}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        source.stop()
        kube.close()
        note("stopped")
