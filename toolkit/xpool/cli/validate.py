"""`xpool validate FILE`: exit 0 when the platform file is valid and every model fits."""

from __future__ import annotations

import click

from xpool.cli.output import note
from xpool.validate import load_and_plan


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate_command(file: str) -> None:
    """Check a platform file: schema, references, shares, and that every model fits a pool."""
    loaded, _ = load_and_plan(file)
    spec = loaded.platform.spec
    note(
        f"{file}: valid ({len(spec.pools)} pools, {len(spec.tiers)} tiers, "
        f"{len(spec.models)} models)"
    )
