"""Printing: data on stdout (table, JSON or YAML), everything else on stderr.

Rich tables only on a terminal and never when NO_COLOR is set; pipes get plain columns.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click
from ruamel.yaml import YAML

FORMATS = ("table", "json", "yaml")


def output_option(
    default: str = "table", choices: tuple[str, ...] = FORMATS, help: str = "Output format."
):
    """The `-o/--output` flag every command shares; commands narrow the formats they print."""
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help=help,
    )


def emit_data(data: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False
        yaml.dump(data, sys.stdout)


def _rich_ok() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def emit_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    if _rich_ok():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for h in headers:
            table.add_column(h, overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    click.echo(f"# {title}")
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo("")


def note(message: str) -> None:
    """Progress and remarks for people: stderr, so stdout stays parseable."""
    click.echo(message, err=True)
