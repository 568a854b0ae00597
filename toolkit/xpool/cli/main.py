"""The `xpool` command group and the one place that turns errors into exit codes."""

from __future__ import annotations

import os
import sys

import click

from xpool.cli.apply import apply_command
from xpool.cli.diff import diff_command
from xpool.cli.gateway import gateway_command
from xpool.cli.models import models_group
from xpool.cli.plan import plan_command
from xpool.cli.reconcile import reconcile_command
from xpool.cli.render import render_command
from xpool.cli.rollout import rollout_group
from xpool.cli.scale import scale_command
from xpool.cli.schema import schema_command
from xpool.cli.simulate import simulate_command
from xpool.cli.status import status_command
from xpool.cli.up import up_command
from xpool.cli.validate import validate_command
from xpool.cli.worker import worker_group
from xpool.errors import XpoolError, printable, redact_userinfo
from xpool.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xpool")
def cli() -> None:
    """xpool: plan, render and run pooled LLM serving on Kubernetes (Volcano + Xinference)."""
    # Actions log progress through `logging`; in text format a line reads as `note` prints
    # it. Commands with --log-format set it up again once they know the flag.
    setup_logging("text")


cli.add_command(validate_command)
cli.add_command(plan_command)
cli.add_command(schema_command)
cli.add_command(render_command)
cli.add_command(up_command)
cli.add_command(status_command)
cli.add_command(diff_command)
cli.add_command(apply_command)
cli.add_command(scale_command)
cli.add_command(gateway_command)
cli.add_command(models_group)
cli.add_command(reconcile_command)
cli.add_command(rollout_group)
cli.add_command(simulate_command)
cli.add_command(worker_group)


def main() -> None:
    """Entry point: user errors become one line per problem and exit 2 (input) or 3 (remote)."""
    try:
        cli.main(standalone_mode=False)
    except XpoolError as exc:
        for line in str(exc).splitlines():
            click.echo(f"error: {printable(redact_userinfo(line))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: one line, not a traceback, unless asked for
        if os.environ.get("XPOOL_DEBUG"):
            raise
        message = redact_userinfo(" ".join(str(exc).split()))[:500]
        click.echo(
            f"error: unexpected {type(exc).__name__}: {message} (an xpool bug: please report "
            "it; XPOOL_DEBUG=1 shows the traceback)",
            err=True,
        )
        sys.exit(1)
