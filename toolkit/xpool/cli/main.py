"""The `xpool` command group and the one place that turns errors into exit codes."""

from __future__ import annotations

import gc
import importlib
import os
import sys

import click

from xpool.errors import XpoolError, printable, redact_credentials
from xpool.gc_paused import gc_paused
from xpool.logs import get_logger, setup_logging

# Each command's module is imported only when that command runs (or help lists it): `xpool
# render` should not pay for the Kubernetes client, and the whole CLI imports in ~0.8 s.
COMMANDS = {
    "validate": "xpool.cli.validate:validate_command",
    "plan": "xpool.cli.plan:plan_command",
    "schema": "xpool.cli.schema:schema_command",
    "render": "xpool.cli.render:render_command",
    "up": "xpool.cli.up:up_command",
    "status": "xpool.cli.status:status_command",
    "diff": "xpool.cli.diff:diff_command",
    "apply": "xpool.cli.apply:apply_command",
    "scale": "xpool.cli.scale:scale_command",
    "gateway": "xpool.cli.gateway:gateway_command",
    "models": "xpool.cli.models:models_group",
    "reconcile": "xpool.cli.reconcile:reconcile_command",
    "rollout": "xpool.cli.rollout:rollout_group",
    "simulate": "xpool.cli.simulate:simulate_command",
    "worker": "xpool.cli.worker:worker_group",
    "batch": "xpool.cli.batch:batch_group",
}


class LazyGroup(click.Group):
    """A group whose commands are named up front and imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, attr = target.split(":")
        with gc_paused():  # imports build many objects and free few
            return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xpool")
def cli() -> None:
    """xpool: plan, render and run pooled LLM serving on Kubernetes (Volcano + Xinference)."""
    # Actions log progress through `logging`; in text format a line reads as `note` prints
    # it. Commands with --log-format set it up again once they know the flag.
    setup_logging("text")


def main() -> None:
    """Entry point: user errors become one line per problem and exit 2 (input) or 3 (remote),
    through the log (so `--log-format json` makes them JSON lines too)."""
    setup_logging("text")  # until a command knows its --log-format
    try:
        _run()
    except XpoolError as exc:
        for line in str(exc).splitlines():
            _error(printable(redact_credentials(line)))
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line, not a traceback, unless asked for
        if os.environ.get("XPOOL_DEBUG"):
            raise
        message = redact_credentials(" ".join(str(exc).split()))[:500]
        _error(
            f"unexpected {type(exc).__name__}: {message} (an xpool bug: please report it; "
            "XPOOL_DEBUG=1 shows the traceback)"
        )
        sys.exit(1)


def _run() -> None:
    """The command; then the process ends, and the collections the interpreter runs at exit
    would walk every object the command built (a tenth of a second after a large render) to
    free memory the OS takes back anyway: freezing them spares that walk."""
    try:
        cli.main(standalone_mode=False)
    finally:
        gc.freeze()


def _error(line: str) -> None:
    get_logger("xpool.cli").error(line)
