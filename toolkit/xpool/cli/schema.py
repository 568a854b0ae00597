"""`xpool schema`: the JSON Schema of the platform file, for editors and CI linting."""

from __future__ import annotations

import json

import click

from xpool.config.schema import platform_json_schema


@click.command("schema")
def schema_command() -> None:
    """Print the platform file's JSON Schema (use with yaml-language-server)."""
    click.echo(json.dumps(platform_json_schema(), indent=2, sort_keys=True))
