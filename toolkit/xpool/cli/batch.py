"""`xpool batch submit|list|status|cancel|results`: flags -> options -> xpool.actions.batch.

stdout carries the data (the batch object with -o json|yaml, result lines for `results`);
progress goes to stderr: a bar on a terminal, one line per change otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from xpool.actions.batch import (
    Connection,
    SubmitOptions,
    cancel,
    list_batches,
    results,
    status,
    submit,
)
from xpool.actions.batch_requests import BATCH_ENDPOINTS
from xpool.cli.options import state_dir_option
from xpool.cli.output import emit_data, emit_table, note, output_option

HEADERS = ("ID", "STATUS", "ENDPOINT", "DONE", "FAILED", "TOTAL", "CREATED")


def _connection(func):
    func = state_dir_option(func)
    func = click.option(
        "--gateway",
        default=None,
        metavar="URL",
        help="The platform's gateway [default: the running `xpool up`'s]; "
        "on Kubernetes its Service, Ingress or a port-forward.",
    )(func)
    return click.argument("file", type=click.Path(dir_okay=False))(func)


def _when(seconds: Any) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _row(batch: dict[str, Any]) -> list[Any]:
    counts = batch.get("request_counts") or {}
    return [
        batch["id"],
        batch["status"],
        batch.get("endpoint"),
        counts.get("completed"),
        counts.get("failed"),
        counts.get("total"),
        _when(batch.get("created_at")),
    ]


def _show(batches: list[dict[str, Any]], output: str, data: Any) -> None:
    if output == "table":
        emit_table("batches", HEADERS, [_row(b) for b in batches])
    else:
        emit_data(data, output)


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: give KEY=VALUE", param_hint="--metadata")
        metadata[key] = value
    return metadata


@contextmanager
def _progress() -> Iterator[Callable[[dict[str, Any]], None]]:
    """A progress callback: a rich bar on a terminal, else a line whenever the counts change."""
    if sys.stderr.isatty() and "NO_COLOR" not in os.environ:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("validating", total=None)

            def update(batch: dict[str, Any]) -> None:
                counts = batch.get("request_counts") or {}
                done = counts.get("completed", 0) + counts.get("failed", 0)
                bar.update(
                    task,
                    description=batch["status"],
                    completed=done,
                    total=counts.get("total") or None,
                )

            yield update
        return
    last: list[tuple[Any, ...]] = []

    def line(batch: dict[str, Any]) -> None:
        counts = batch.get("request_counts") or {}
        seen = (batch["status"], counts.get("completed"), counts.get("failed"))
        if last and last[-1] == seen:
            return
        last.append(seen)
        note(
            f"{batch['id']}: {batch['status']} {counts.get('completed', 0)} completed, "
            f"{counts.get('failed', 0)} failed of {counts.get('total', 0)}"
        )

    yield line


@click.group("batch")
def batch_group() -> None:
    """Batch work through the gateway's OpenAI-compatible Batch API, at the lowest priority."""


@batch_group.command("submit")
@_connection
@click.argument("model")
@click.argument("requests", type=click.Path(dir_okay=False))
@click.option(
    "--endpoint",
    type=click.Choice(BATCH_ENDPOINTS),
    default=None,
    help="Where each request goes [default: chat completions, or embeddings for an embedding model].",
)
@click.option(
    "--metadata", multiple=True, metavar="KEY=VALUE", help="Kept with the batch (repeatable)."
)
@click.option(
    "--wait", is_flag=True, help="Wait until the batch ends, with its progress on stderr."
)
@output_option()
def submit_command(
    file: str,
    gateway: str | None,
    state_dir: str | None,
    model: str,
    requests: str,
    endpoint: str | None,
    metadata: tuple[str, ...],
    wait: bool,
    output: str,
) -> None:
    """Submit REQUESTS (JSONL of {custom_id, body}) as one batch for MODEL; prints its id."""
    options = SubmitOptions(
        Connection(file, gateway, state_dir), model, requests, endpoint, _metadata(metadata), wait
    )
    options.validate()
    with _progress() as progress:
        batch = submit(options, on_note=note, on_progress=progress)
    if output == "table":
        click.echo(batch["id"])
    else:
        emit_data(batch, output)


@batch_group.command("list")
@_connection
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--after", default=None, metavar="BATCH_ID", help="The page after this batch.")
@output_option()
def list_command(
    file: str,
    gateway: str | None,
    state_dir: str | None,
    limit: int,
    after: str | None,
    output: str,
) -> None:
    """The platform's batches, newest first."""
    page = list_batches(Connection(file, gateway, state_dir), limit, after)
    _show(page.get("data") or [], output, page)
    if output == "table" and page.get("has_more"):
        note(f"more: --after {page.get('last_id')}")


@batch_group.command("status")
@_connection
@click.argument("batch_id")
@output_option()
def status_command(
    file: str, gateway: str | None, state_dir: str | None, batch_id: str, output: str
) -> None:
    """One batch: its status and request counts."""
    batch = status(Connection(file, gateway, state_dir), batch_id)
    _show([batch], output, batch)


@batch_group.command("cancel")
@_connection
@click.argument("batch_id")
@output_option()
def cancel_command(
    file: str, gateway: str | None, state_dir: str | None, batch_id: str, output: str
) -> None:
    """Cancel a batch: requests in flight finish, the rest are not sent."""
    batch = cancel(Connection(file, gateway, state_dir), batch_id)
    _show([batch], output, batch)


@batch_group.command("results")
@_connection
@click.argument("batch_id")
@click.option("--errors", is_flag=True, help="The error file instead of the output file.")
def results_command(
    file: str, gateway: str | None, state_dir: str | None, batch_id: str, errors: bool
) -> None:
    """Print a finished batch's output lines (JSONL, one per request), or its error lines."""
    content = results(Connection(file, gateway, state_dir), batch_id, errors=errors)
    click.echo(content.decode(), nl=False)
