"""`xpool gateway FILE`: run the gateway standalone (e.g. the gateway StatefulSet), routing by
the ConfigMap the reconciler writes (polled every --interval seconds), until SIGINT/SIGTERM.

The replica reports itself in its own Lease (gateway/replica_report.py) from before its first
read of the routes until after its last request ended, so the reconciler never terminates an
instance this replica may still be using."""

from __future__ import annotations

import click

from xpool.actions.gateway import MIN_INTERVAL, GatewayOptions, run_gateway
from xpool.actions.runtime import Runtime, stop_on_signals
from xpool.cli.options import connection_options, log_format_option
from xpool.logs import setup_logging


@click.command("gateway")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
@click.option("--configmap", default="xpool-routes", show_default=True, help="Routes ConfigMap.")
@click.option(
    "--interval",
    type=click.FloatRange(min=MIN_INTERVAL),
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
@log_format_option
def gateway_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    configmap: str,
    interval: float,
    listen: str | None,
    replica: str | None,
    log_format: str,
) -> None:
    """Serve the OpenAI-compatible gateway, its routes read from a Kubernetes ConfigMap."""
    setup_logging(log_format)
    options = GatewayOptions(file, namespace, configmap, interval, listen, replica)
    options.validate()
    run_gateway(options, Runtime(kubeconfig, context), stop_on_signals())
