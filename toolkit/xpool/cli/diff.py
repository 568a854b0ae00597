"""`xpool diff FILE`: what `xpool apply` would change, from server-side dry runs only."""

from __future__ import annotations

import sys

import click

from xpool.actions.diff import DiffOptions, diff
from xpool.actions.runtime import Runtime
from xpool.cli.options import connection_options, kubernetes_version_option
from xpool.cli.output import note


@click.command("diff")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Also show the objects `apply` would prune (as deletions).",
)
@kubernetes_version_option
def diff_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    prune: bool,
    kubernetes_version: str,
) -> None:
    """Show a unified diff (YAML) per object between the live state and what a server-side
    apply would produce (dryRun=All), and the objects pruning would delete. Writes nothing.

    Exit codes: 0 nothing would change; 1 something would change (or a field conflict, or an
    existing object that is not this platform's, would stop the apply); 2 bad input or a kind the cluster does not serve; 3 the API server failed."""
    options = DiffOptions(file, namespace, prune, kubernetes_version)
    options.validate()
    result = diff(options, Runtime(kubeconfig=kubeconfig, context=context))
    if not result.kubernetes:
        return
    for d in result.diffs:
        if d.refused:
            click.echo(f"not ours: {d.refused}", err=True)
        if d.conflict:
            click.echo(f"conflict: {d.conflict}", err=True)
        elif d.text:
            click.echo(d.text, nl=False)
    summary = ", ".join(f"{n} {c}" for c, n in sorted(result.counts.items()))
    note(f"{result.changed} object(s) would change ({summary})" if result.changed else "no changes")
    if result.changed:
        sys.exit(1)
