"""`xpool render FILE`: the Kubernetes objects (and Xinference launch specs) of a platform."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from xpool.cli.output import note, output_option
from xpool.config.models import Platform
from xpool.errors import InputError, Problem
from xpool.render import Rendering, render_platform
from xpool.render.checks import (
    DEFAULT_K8S_VERSION,
    UnsupportedKubernetesVersion,
    check_objects,
    supported_kubernetes_versions,
)
from xpool.validate import load_and_plan

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def kubernetes_version_option(func):
    return click.option(
        "--kubernetes-version",
        default=DEFAULT_K8S_VERSION,
        show_default=True,
        help="Kubernetes minor version whose OpenAPI schemas the rendered objects must pass.",
    )(func)


def render_checked(
    file: str, kubernetes_version: str, namespace: str | None = None
) -> tuple[Platform, Rendering]:
    """Load, plan, render, then check every object; refuse (exit 2) a set that fails.

    `namespace` replaces spec.kubernetes.namespace (the -n flag of apply and diff)."""
    loaded, plan = load_and_plan(file)
    platform = with_namespace(loaded.platform, namespace)
    text = Path(file).read_text(encoding="utf-8")
    rendering = render_platform(platform, plan, loaded.architectures, text)
    try:
        problems = check_objects(
            [o.obj for o in rendering.objects], kubernetes_version=kubernetes_version
        )
    except UnsupportedKubernetesVersion:
        known = ", ".join(supported_kubernetes_versions())
        raise InputError(
            f"--kubernetes-version {kubernetes_version} is not supported (known: {known})"
        ) from None
    if problems:
        raise InputError(list(problems))
    return platform, rendering


def with_namespace(platform: Platform, namespace: str | None) -> Platform:
    kube = platform.spec.kubernetes
    if kube is None or not namespace or namespace == kube.namespace:
        return platform
    if not DNS_LABEL.match(namespace):
        raise InputError(
            [Problem("-n/--namespace", "", f"{namespace!r} is not a DNS label (RFC 1123)")]
        )
    spec = platform.spec.model_copy(
        update={"kubernetes": kube.model_copy(update={"namespace": namespace})}
    )
    return platform.model_copy(update={"spec": spec})


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
    help="Print the Xinference registration and launch spec of every model version (JSON).",
)
@kubernetes_version_option
def render_command(
    file: str, output: str, out_dir: str | None, launch_specs: bool, kubernetes_version: str
) -> None:
    """Render Volcano queues and worker jobs, Xinference, gateway, reconciler and monitoring
    objects in apply order; stdout carries the objects only. A set that fails the built-in
    checks (Kubernetes schemas, Volcano CRDs and admission rules, tier intent) is refused."""
    _, rendering = render_checked(file, kubernetes_version)
    for line in rendering.notes:
        note(f"note: {line}")
    if launch_specs:
        click.echo(json.dumps(rendering.launch_specs, indent=2, ensure_ascii=False))
        return
    if not rendering.objects:
        note("use --launch-specs for the Xinference launch specs")
        return
    if out_dir is not None:
        directory = Path(out_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for name, doc in rendering.files():
                (directory / name).write_text(doc, encoding="utf-8")
        except OSError as exc:
            raise InputError([Problem(out_dir, "", f"cannot write: {exc}")]) from None
        note(f"wrote {len(rendering.objects)} objects to {directory}")
        return
    click.echo(rendering.yaml() if output == "yaml" else rendering.json(), nl=False)
