"""`xpool reconcile FILE --once | --loop`: observe -> decide -> act.

`--once` runs one pass (for a CronJob) and exits 0 when converged or when it acted, 3 when a
remote system failed. `--loop` repeats passes every `--interval` while it holds leadership
(a second reconciler waits and takes over when the first dies) and serves `/metrics` and
`/healthz` on `--listen`. `--dry-run` decides and prints, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import click

from xpool.actions.reconcile import ReconcileOptions, reconcile_loop, reconcile_once
from xpool.actions.runtime import Runtime, stop_on_signals
from xpool.cli.options import connection_options, log_format_option
from xpool.cli.output import emit_data, emit_table, output_option
from xpool.errors import RemoteError
from xpool.logs import get_logger, setup_logging
from xpool.policy.actions import as_dict
from xpool.reconcile.pass_result import PassResult

log = get_logger(__name__)


def _report(result: PassResult, output: str) -> None:
    data: dict[str, Any] = {
        "decisions": [as_dict(d) for d in result.decisions],
        "actions": result.done,
        "waiting": result.waiting,
        "errors": result.errors,
        "seconds": round(result.seconds, 3),
    }
    if output != "table":
        emit_data(data, output)
        return
    emit_table(
        "Decisions",
        ["MODEL", "TIER", "ACTIVE", "DESIRED", "REASON"],
        [(d.model, d.tier, d.active, d.desired, d.reason) for d in result.decisions],
    )
    if result.done:
        emit_table(
            "Actions",
            ["ACTION", "SUBJECT", "REASON"],
            [
                (r["action"] + (" (planned)" if r["planned"] else ""), r["subject"], r["reason"])
                for r in result.done
            ],
        )
    for subject in result.waiting:
        log.info(
            f"{subject}: not yet (requests still in flight, or no node has room for a new "
            "worker); retried on a later pass",
            extra={"subject": subject},
        )


@click.command("reconcile")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--once", "mode", flag_value="once", default=True, help="One pass, then exit.")
@click.option("--loop", "mode", flag_value="loop", help="Pass every --interval until stopped.")
@click.option("--interval", default="15s", show_default=True, help="Time between passes.")
@click.option("--dry-run", is_flag=True, help="Decide and print; change nothing.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory of the running `xpool up` (embedded endpoint only).",
)
@click.option(
    "--prometheus",
    default=None,
    help="Prometheus URL [default: spec.prometheus.url, else the one `xpool up` started].",
)
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON-lines audit log [default: STATE_DIR/audit.jsonl locally, stderr on Kubernetes].",
)
@click.option(
    "--listen",
    default="127.0.0.1:9464",
    show_default=True,
    help="--loop: address of /metrics and /healthz (port 0: any free port).",
)
@connection_options
@output_option()
@log_format_option
def reconcile_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    mode: str,
    interval: str,
    dry_run: bool,
    state_dir: str | None,
    prometheus: str | None,
    audit_log: str | None,
    listen: str,
    output: str,
    log_format: str,
) -> None:
    """Keep instances and queue shares matched to demand (tiers, borrowing, drain first)."""
    setup_logging(log_format)
    options = ReconcileOptions(
        file,
        loop=mode == "loop",
        interval=interval,
        dry_run=dry_run,
        state_dir=state_dir,
        prometheus=prometheus,
        audit_log=audit_log,
        listen=listen,
        namespace=namespace,
    )
    options.validate()
    runtime = Runtime(kubeconfig, context)
    if options.loop:
        reconcile_loop(options, runtime, stop_on_signals())
        return
    result = reconcile_once(options, runtime)
    _report(result, output)
    if result.errors and not options.dry_run:
        raise RemoteError("; ".join(result.errors))
