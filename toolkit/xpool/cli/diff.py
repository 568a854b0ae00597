"""`xpool diff FILE`: what `xpool apply` would change, from server-side dry runs only."""

from __future__ import annotations

import sys

import click

from xpool.cli.apply import connect, connection_options, render_for_kubernetes, resolve_targets
from xpool.cli.output import note
from xpool.cli.render import kubernetes_version_option


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

    Exit codes: 0 nothing would change; 1 something would change (or a field conflict would
    stop the apply); 2 bad input or a kind the cluster does not serve; 3 the API server failed."""
    kr = render_for_kubernetes(file, kubernetes_version, namespace)
    for line in kr.rendering.notes:
        note(f"note: {line}")
    if kr.namespace is None:
        note(f"{file}: spec.kubernetes is absent: no Kubernetes objects to compare")
        return
    applier = connect(kubeconfig, context, kr.namespace)
    try:
        targets = resolve_targets(applier, kr.rendering)
        diffs = applier.diff(targets, prune=prune)
    finally:
        applier.client.close()
    counts: dict[str, int] = {}
    for d in diffs:
        counts[d.change] = counts.get(d.change, 0) + 1
        if d.conflict:
            click.echo(f"conflict: {d.conflict}", err=True)
        elif d.text:
            click.echo(d.text, nl=False)
    changed = sum(n for change, n in counts.items() if change != "none")
    summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()) if c != "none")
    note(f"{changed} object(s) would change ({summary})" if changed else "no changes")
    if changed:
        sys.exit(1)
