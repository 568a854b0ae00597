"""`xpool up FILE`: run a platform here — Xinference (embedded or remote), its models, a gateway.

The session (xpool.actions.up) starts everything, then this prints where to send requests and
serves until SIGINT/SIGTERM, or with `--smoke` sends one request per model through the
gateway and prints the answers instead; either way the session stops what it started. A
second Ctrl-C while stopping gives up at once: the embedded Xinference is killed, exit 130.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import click

from xpool.actions.runtime import Runtime
from xpool.actions.up import UpOptions, UpSession
from xpool.cli.options import log_format_option
from xpool.logs import setup_logging


class Stop(Exception):
    """Raised in the main thread by the first SIGINT/SIGTERM."""


def _install_signals(session: UpSession) -> None:
    def first(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, second)
        signal.signal(signal.SIGTERM, second)
        raise Stop(signal.Signals(signum).name)

    def second(_signum: int, _frame: Any) -> None:
        session.kill()
        click.echo("interrupted", err=True)
        os._exit(130)

    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def _restore_signals() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _serve(session: UpSession) -> None:
    up = session.start()
    if session.options.smoke:
        for line in session.smoke():
            click.echo(line)
        return
    click.echo(f"{up.platform} is serving on {up.gateway}; try (Ctrl-C stops):")
    for line in session.examples():
        click.echo(f"  {line}")
    sys.stdout.flush()  # a caller waits for the first line to know it serves
    session.serve_until(threading.Event())  # a signal ends it (Stop)


@click.command("up")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Embedded Xinference home, log and pid file [default: $XDG_STATE_HOME/xpool/<platform>].",
)
@click.option(
    "--smoke",
    is_flag=True,
    help="Bring everything up, send one request per model through the gateway, print the "
    "answers, and stop.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds to wait for each instance to become ready.",
)
@click.option(
    "--prometheus/--no-prometheus",
    "with_prometheus",
    default=True,
    show_default=True,
    help="Start a local Prometheus scraping the gateway (when the `prometheus` binary is "
    "installed), for `xpool reconcile` to read load from.",
)
@click.option(
    "--workers/--single-process",
    "workers",
    default=None,
    help="Run an Xinference supervisor and one worker process per worker of the CPU pools' "
    "tiers (one per node when the tiers' shares are whole nodes), and place each instance on "
    "a worker of its tier; or one `xinference-local` process. [default: workers when a CPU "
    "pool has more than one node]",
)
@log_format_option
def up_command(
    file: str,
    state_dir: str | None,
    smoke: bool,
    timeout: float,
    with_prometheus: bool,
    workers: bool | None,
    log_format: str,
) -> None:
    """Run the platform here: Xinference, the models' instances and the gateway, until Ctrl-C."""
    setup_logging(log_format)
    options = UpOptions(file, state_dir, smoke, timeout, with_prometheus, workers)
    options.validate()
    runtime = Runtime()
    session = UpSession(options, runtime)
    _install_signals(session)
    try:
        _serve(session)
    except Stop as exc:
        runtime.log(f"{exc}: stopping")
    finally:
        session.stop()
        _restore_signals()
