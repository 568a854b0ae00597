"""`xpool render FILE`: the Kubernetes objects (and Xinference launch specs) of a platform."""

from __future__ import annotations

import json

import click

from xpool.actions.render import RenderOptions, render
from xpool.actions.runtime import Runtime
from xpool.cli.options import kubernetes_version_option, namespace_option
from xpool.cli.output import note, output_option


@click.command("render")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option(
    default="yaml", choices=("yaml", "json"), help="yaml: a multi-document stream; json: a v1 List."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write one file per object (NN-kind-name.yaml, in apply order) into DIR.",
)
@click.option(
    "--launch-specs",
    is_flag=True,
    help="Print the Xinference registration and launch spec of every model version (JSON); "
    "not with --out.",
)
@namespace_option
@kubernetes_version_option
def render_command(
    file: str,
    output: str,
    out_dir: str | None,
    launch_specs: bool,
    namespace: str | None,
    kubernetes_version: str,
) -> None:
    """Render Volcano queues and worker jobs, Xinference, gateway, reconciler and monitoring
    objects in apply order; stdout carries the objects only. A set that fails the built-in
    checks (Kubernetes schemas, Volcano CRDs and admission rules, tier intent) is refused."""
    options = RenderOptions(file, namespace, out_dir, launch_specs, kubernetes_version)
    options.validate()
    result = render(options, Runtime())
    rendering = result.rendering
    if launch_specs:
        click.echo(json.dumps(rendering.launch_specs, indent=2, ensure_ascii=False))
    elif not rendering.objects:
        note("use --launch-specs for the Xinference launch specs")
    elif result.written is not None:
        note(f"wrote {len(rendering.objects)} objects to {result.written}")
    else:
        click.echo(rendering.yaml() if output == "yaml" else rendering.json(), nl=False)
