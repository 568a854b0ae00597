"""`xpool worker drain FILE --worker HOST[:PORT]`: drain an Xinference worker's instances before
it stops (a worker pod's preStop hook; by hand before stopping a worker of `xpool up`).

Exit 0 when drained, when there was nothing to drain, and when drainTimeout passed (with a
warning: the kubelet stops the worker after the hook anyway); 2 bad input; 3 Xinference, the
gateway or the API server still failing after retries.
"""

from __future__ import annotations

import click

from xpool.actions.runtime import Runtime
from xpool.actions.worker_drain import DrainWorkerOptions, drain_worker
from xpool.cli.options import connection_options, log_format_option, state_dir_option
from xpool.cli.output import emit_data, output_option
from xpool.logs import setup_logging


@click.group("worker")
def worker_group() -> None:
    """Xinference workers: drain one before it stops."""


@worker_group.command("drain")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--worker",
    required=True,
    help="The worker as the supervisor names it, HOST:PORT; a bare HOST (a pod's IP) drains "
    "every worker there.",
)
@click.option(
    "--done-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Touched when this ends, however it ends (the worker container's preStop waits for it).",
)
@state_dir_option
@connection_options
@output_option()
@log_format_option
def drain_command(
    file: str,
    worker: str,
    done_file: str | None,
    state_dir: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
    log_format: str,
) -> None:
    """Drain the worker's instances (no new requests; in-flight ones finish), then wait until
    they are idle or spec.autoscaling.drainTimeout passes."""
    setup_logging(log_format)
    options = DrainWorkerOptions(
        file, worker, state_dir=state_dir, namespace=namespace, done_file=done_file
    )
    options.validate()
    result = drain_worker(options, Runtime(kubeconfig, context))
    if output != "table":
        emit_data(
            {
                "worker": result.worker,
                "instances": result.instances,
                "drained": result.drained,
                "inflight": result.inflight,
                "seconds": round(result.seconds, 3),
            },
            output,
        )
