"""`xpool scale FILE MODEL --instances N`: flags -> ScaleOptions -> xpool.actions.scale.

Scale down drains before it terminates; the command returns when the gateway is done.
"""

from __future__ import annotations

import click

from xpool.actions.scale import ScaleOptions, scale
from xpool.cli.options import state_dir_option
from xpool.cli.output import emit_data, note, output_option


def _summary(model: str, instances: int, result: dict) -> str:
    timeouts = result["drainTimeouts"]
    return (
        f"{model}: {instances} instance(s); launched {', '.join(result['launched']) or '-'}; "
        f"terminated {', '.join(result['terminated']) or '-'}"
        + (f"; drain timed out for {', '.join(timeouts)}" if timeouts else "")
        + f" ({result['seconds']} s)"
    )


@click.command("scale")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("model")
@click.option("--instances", type=click.IntRange(min=0), required=True, help="Instances wanted.")
@click.option("--version", "version", default=None, help="Model version [default: the first].")
@click.option("--force", is_flag=True, help="Allow a count outside instances.min..max.")
@state_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for launches and drains.",
)
@output_option()
def scale_command(
    file: str,
    model: str,
    instances: int,
    version: str | None,
    force: bool,
    state_dir: str | None,
    timeout: float,
    output: str,
) -> None:
    """Scale MODEL to N instances on the running `xpool up` (drain before terminate)."""
    options = ScaleOptions(file, model, instances, version, force, state_dir, timeout)
    options.validate()
    result = scale(options)
    if output != "table":
        emit_data(result, output)
        return
    note(_summary(model, instances, result))
    click.echo(f"{model} scaled to {instances}")
