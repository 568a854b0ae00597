"""`xpool validate FILE`: exit 0 when the platform file is valid and every model fits."""

from __future__ import annotations

import click

from xpool.cli.output import note
from xpool.cli.render import kubernetes_version_option, render_checked
from xpool.validate import load_and_plan


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--rendered",
    is_flag=True,
    help="Also render every object and run the built-in checks on them.",
)
@kubernetes_version_option
def validate_command(file: str, rendered: bool, kubernetes_version: str) -> None:
    """Check a platform file: schema, references, shares, that every model fits a pool and,
    with --rendered, that every rendered object passes Kubernetes and Volcano checks."""
    loaded, _ = load_and_plan(file)
    spec = loaded.platform.spec
    summary = f"{len(spec.pools)} pools, {len(spec.tiers)} tiers, {len(spec.models)} models"
    if rendered:
        _, rendering = render_checked(file, kubernetes_version)
        if rendering.objects:
            summary += f"; {len(rendering.objects)} rendered objects pass the checks"
        else:
            summary += "; no spec.kubernetes, so no objects to render"
    note(f"{file}: valid ({summary})")
