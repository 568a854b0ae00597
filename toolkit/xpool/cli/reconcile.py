"""`xpool reconcile FILE --once | --loop`: observe -> decide -> act.

`--once` runs one pass (for a CronJob) and exits 0 when converged or when it acted, 3 when a
remote system failed. `--loop` repeats passes every `--interval` while it holds leadership
(a second reconciler waits and takes over when the first dies) and serves `/metrics` and
`/healthz` on `--listen`. `--dry-run` decides and prints, and changes nothing.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from xpool.cli.apply import connection_options
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.cli.up import read_up_file, state_dir_for
from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem, RemoteError
from xpool.policy.actions import as_dict
from xpool.reconcile.leader import wait_for_leadership
from xpool.reconcile.metrics import ReconcilerMetrics
from xpool.reconcile.reconciler import PassResult, run_loop
from xpool.reconcile.serve import HealthServer
from xpool.reconcile.wiring import kube_reconciler, local_reconciler
from xpool.validate import load_and_plan


def _interval(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InputError([Problem("--interval", "", str(exc))]) from None
    if seconds < 1:
        raise InputError([Problem("--interval", "", "use at least 1s")])
    return seconds


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
    for uid in result.waiting:
        note(f"{uid}: still has requests in flight; terminated on a later pass")


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
) -> None:
    """Keep instances and queue shares matched to demand (tiers, borrowing, drain first)."""
    seconds = _interval(interval)
    loaded, plan = load_and_plan(file)
    platform = loaded.platform
    metrics = ReconcilerMetrics()
    audit = Path(audit_log) if audit_log else None
    if platform.spec.xinference.endpoint == "embedded":
        state = state_dir_for(platform, state_dir)
        wired = local_reconciler(
            loaded,
            plan,
            state,
            read_up_file(state),
            prometheus=prometheus,
            audit_path=audit,
            dry_run=dry_run,
            metrics=metrics,
            log=note,
        )
    else:
        wired = kube_reconciler(
            loaded,
            plan,
            kubeconfig=kubeconfig,
            context=context,
            namespace=namespace,
            prometheus=prometheus,
            audit_path=audit,
            dry_run=dry_run,
            metrics=metrics,
            log=note,
        )
    if wired.prometheus is None:
        note("no Prometheus configured: load is unknown, so only instances.min/max and drains act")
    if mode == "once" and dry_run:  # changes nothing, so it needs no leadership
        _report(wired.reconciler.run_pass(), output)
        return
    if mode == "once":
        if not wired.leader.try_acquire():
            raise RemoteError(
                f"another reconciler is active ({wired.leader.holder() or 'unknown'}); "
                "this pass did nothing"
            )
        try:
            result = wired.reconciler.run_pass()
        finally:
            wired.leader.release()
        _report(result, output)
        if result.errors:
            raise RemoteError("; ".join(result.errors))
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    leading = threading.Event()

    def is_leader() -> bool:
        try:
            held = wired.leader.try_acquire()
        except RemoteError as exc:  # cannot tell: acting now could make two leaders
            note(f"leadership unknown ({exc}): not acting")
            held = False
        metrics.leader.set(1 if held else 0)
        if held and not leading.is_set():
            note("leading: acting every pass")
            leading.set()
        elif not held and leading.is_set():
            note("lost leadership: standing by")
            leading.clear()
        return held

    server = HealthServer(listen, metrics, interval=seconds, is_leader=leading.is_set).start()
    note(f"reconciler serving {server.url}/metrics and /healthz; pass every {seconds:g} s")
    try:
        if not wait_for_leadership(
            wired.leader, retry_every=min(seconds, 5.0), stop=stop, log=note
        ):
            return
        run_loop(wired.reconciler, interval=seconds, stop=stop, is_leader=is_leader, log=note)
    finally:
        wired.leader.release()
        server.stop()
        note("reconciler stopped")
