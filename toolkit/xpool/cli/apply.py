"""`xpool apply FILE`: validate, render, server-side apply the Kubernetes objects, then make
the remote Xinference hold each model's registration and `instances.min` ready instances."""

from __future__ import annotations

import json

import click

from xpool.actions.apply import ApplyOptions, apply
from xpool.actions.apply_models import InstanceOutcome
from xpool.actions.runtime import Runtime
from xpool.adapters.kube import Outcome
from xpool.cli.options import connection_options, kubernetes_version_option
from xpool.cli.output import emit_table, output_option


def _print_objects(outcomes: list[Outcome], output: str, dry_run: str) -> None:
    if output == "json":
        data = {"dryRun": dry_run, "objects": [o.as_dict() for o in outcomes]}
        click.echo(json.dumps(data, indent=2))
        return
    title = "kubernetes apply" + ("" if dry_run == "none" else f" (dry run: {dry_run})")
    rows = [(o.kind, o.namespace or "", o.name, o.action) for o in outcomes]
    emit_table(title, ("KIND", "NAMESPACE", "NAME", "ACTION"), rows)


def _print_instances(instances: list[InstanceOutcome], output: str) -> None:
    if output == "json":
        data = {"instances": [{"uid": i.uid, "action": i.action} for i in instances]}
        click.echo(json.dumps(data, indent=2))
    else:
        rows = sorted((i.uid, i.action) for i in instances)
        emit_table("xinference instances", ("UID", "ACTION"), rows)


@click.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
@click.option(
    "--dry-run",
    "dry_run",
    type=click.Choice(("none", "client", "server")),
    default="none",
    show_default=True,
    help="client: render and check only, contact nothing (so nothing is forced or pruned); "
    "server: send every request with dryRun=All, persist nothing.",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="Take ownership of fields another field manager owns (server-side apply force); "
    "not with --dry-run=client, which sends nothing. Never adopts an object (see --adopt).",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over rendered objects that exist but are not this platform's (no ApplySet "
    "label of ours, another's, or Helm's): they join this platform's ApplySet, so a later "
    "prune may delete them. Without it such objects are refused, each named with its "
    "managers, and nothing is written.",
)
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Delete objects this platform applied earlier that are no longer rendered "
    "(ApplySet labels; objects without our label are never touched). "
    "--dry-run=client computes no pruning.",
)
@output_option(choices=("table", "json"), help="Summary format (stdout).")
@click.option(
    "--skip-models",
    is_flag=True,
    help="Apply the Kubernetes objects only; leave Xinference registrations and instances.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds to wait for each Xinference instance to become ready.",
)
@kubernetes_version_option
def apply_command(
    file: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    dry_run: str,
    force_conflicts: bool,
    adopt: bool,
    prune: bool,
    output: str,
    skip_models: bool,
    timeout: float,
    kubernetes_version: str,
) -> None:
    """Validate and render FILE, then server-side apply its Kubernetes objects (field manager
    `xpool`) in order, writing only what changed, and prune what is no longer rendered.

    Exit codes: 0 applied; 1 a field is owned by another field manager (use
    --force-conflicts); 2 bad input, a kind the cluster does not serve, or an existing object
    that is not this platform's (use --adopt); 3 the API server or Xinference still failed
    after retries."""
    options = ApplyOptions(
        file,
        namespace=namespace,
        dry_run=dry_run,
        force_conflicts=force_conflicts,
        adopt=adopt,
        prune=prune,
        skip_models=skip_models,
        timeout=timeout,
        kubernetes_version=kubernetes_version,
    )
    options.validate()
    result = apply(
        options,
        Runtime(kubeconfig=kubeconfig, context=context),
        show_objects=lambda outcomes: _print_objects(outcomes, output, dry_run),
    )
    if result.instances is not None:
        _print_instances(result.instances, output)
