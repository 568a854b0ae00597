"""`xpool validate FILE`: exit 0 when the platform file is valid and every model fits."""

from __future__ import annotations

import click

from xpool.actions.validate import ValidateOptions, validate
from xpool.cli.options import kubernetes_version_option
from xpool.cli.output import note


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
    options = ValidateOptions(file, rendered, kubernetes_version)
    options.validate()
    result = validate(options)
    note(f"{file}: valid ({result.summary()})")
