"""`xpool apply FILE`: validate, render, server-side apply the Kubernetes objects, then make
the remote Xinference hold each model's registration and `instances.min` ready instances.

Kubernetes: discovery (every kind must be served before the first write), server-side apply
with field manager `xpool` in the renderer's order, writes only where a dry run shows a
change, ApplySet pruning, bounded retries. Xinference: custom-model registration and one
model UID per instance (`replica: 1`), adopting what runs; see adapters/xinference.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from xpool.cli.output import emit_table, note, output_option
from xpool.cli.render import kubernetes_version_option, render_checked
from xpool.config.models import Platform
from xpool.errors import InputError, Problem
from xpool.render import Rendering

if TYPE_CHECKING:
    from xpool.adapters.kube import Applier, Outcome, Target


def connection_options(func):
    """--kubeconfig, --context, -n/--namespace (shared by apply and diff)."""
    func = click.option(
        "-n",
        "--namespace",
        default=None,
        help="Platform namespace; overrides spec.kubernetes.namespace for every namespaced "
        "object (and the references to it).",
    )(func)
    func = click.option(
        "--context", default=None, help="kubeconfig context to use (default: current-context)."
    )(func)
    func = click.option(
        "--kubeconfig",
        default=None,
        help="kubeconfig file(s), separated by ':' like KUBECONFIG. Default: $KUBECONFIG, "
        "then the in-cluster service account, then ~/.kube/config.",
    )(func)
    return func


@dataclass
class KubeRendering:
    platform: Platform
    rendering: Rendering
    namespace: str | None  # None: spec.kubernetes is absent


def render_for_kubernetes(
    file: str, kubernetes_version: str, namespace: str | None
) -> KubeRendering:
    """Load, plan, render (with `namespace` replacing spec.kubernetes.namespace), check."""
    platform, rendering = render_checked(file, kubernetes_version, namespace)
    kube = platform.spec.kubernetes
    return KubeRendering(platform, rendering, kube.namespace if kube is not None else None)


def connect(kubeconfig: str | None, context: str | None, namespace: str) -> Applier:
    from xpool.adapters.kube import Applier, Connection, KubeClient

    client = KubeClient.connect(Connection(kubeconfig, context), log=note)
    return Applier(client, namespace, log=note)


def resolve_targets(applier: Applier, rendering: Rendering) -> list[Target]:
    return applier.resolve(o.obj for o in rendering.objects)


def apply_kubernetes(
    kr: KubeRendering,
    *,
    kubeconfig: str | None,
    context: str | None,
    dry_run: str,
    force_conflicts: bool,
    prune: bool,
) -> list[Outcome]:
    """The Kubernetes part of `xpool apply`; returns one outcome per object touched."""
    from xpool.adapters.kube import Outcome

    assert kr.namespace is not None
    if dry_run == "client":
        note(
            "--dry-run=client: rendered and checked locally; the cluster was not contacted "
            "(no discovery, no dry-run requests, pruning not computed)"
        )
        return [
            Outcome(
                str(o.obj["apiVersion"]),
                o.kind,
                o.namespace,
                o.name,
                "would apply",
            )
            for o in kr.rendering.objects
        ]
    applier = connect(kubeconfig, context, kr.namespace)
    try:
        targets = resolve_targets(applier, kr.rendering)
        note(
            f"applying {len(targets)} objects to {applier.client.host} "
            f"(namespace {kr.namespace}, field manager xpool"
            f"{', server dry run' if dry_run == 'server' else ''})"
        )
        return applier.apply(
            targets, dry_run=dry_run == "server", force=force_conflicts, prune=prune
        )
    finally:
        applier.client.close()


def print_outcomes(outcomes: list[Outcome], output: str, dry_run: str) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {"dryRun": dry_run, "objects": [o.as_dict() for o in outcomes]},
                indent=2,
            )
        )
        return
    title = "kubernetes apply" + ("" if dry_run == "none" else f" (dry run: {dry_run})")
    rows = [(o.kind, o.namespace or "", o.name, o.action) for o in outcomes]
    emit_table(title, ("KIND", "NAMESPACE", "NAME", "ACTION"), rows)


@click.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
@click.option(
    "--dry-run",
    "dry_run",
    type=click.Choice(("none", "client", "server")),
    default="none",
    show_default=True,
    help="client: render and check only, contact nothing; server: send every request with "
    "dryRun=All, persist nothing.",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    help="Take ownership of fields another field manager owns (server-side apply force).",
)
@click.option(
    "--prune/--no-prune",
    default=True,
    show_default=True,
    help="Delete objects this platform applied earlier that are no longer rendered "
    "(ApplySet labels; objects without our label are never touched).",
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
    prune: bool,
    output: str,
    skip_models: bool,
    timeout: float,
    kubernetes_version: str,
) -> None:
    """Validate and render FILE, then server-side apply its Kubernetes objects (field manager
    `xpool`) in order, writing only what changed, and prune what is no longer rendered.

    Exit codes: 0 applied; 1 a field is owned by another field manager (use
    --force-conflicts); 2 bad input or a kind the cluster does not serve; 3 the API server
    or Xinference still failed after retries."""

    kr = render_for_kubernetes(file, kubernetes_version, namespace)
    for line in kr.rendering.notes:
        note(f"note: {line}")
    if kr.namespace is not None:
        _apply_kubernetes_part(kr, kubeconfig, context, dry_run, force_conflicts, prune, output)
    else:
        note(f"{file}: spec.kubernetes is absent: skipping the Kubernetes part")
    if skip_models:
        note("--skip-models: Xinference registrations and instances left as they are")
        return
    apply_models(kr.platform, kr.rendering, dry_run=dry_run, timeout=timeout, output=output)


def apply_models(
    platform: Platform, rendering: Rendering, *, dry_run: str, timeout: float, output: str
) -> None:
    """Register every model version and ensure `instances.min` ready instances of each
    model's stable version on the platform's remote Xinference (idempotent)."""
    from xpool.adapters.xinference import XinferenceClient, ensure_instances, wants_for
    from xpool.cli.up import api_key_from_env, state_dir_for

    endpoint = platform.spec.xinference.endpoint
    if endpoint == "embedded":
        note("xinference.endpoint is embedded: `xpool up FILE` runs it and its models; skipping")
        return
    wants = [w for w in wants_for(platform, rendering.launch_specs) if w.count > 0]
    here_only = {"local://", "s3://"} & {
        scheme
        for w in wants
        for scheme in ("local://", "s3://")
        if scheme in json.dumps(w.registration)
    }
    if here_only:
        # Built-in models live in xpool's state directory and s3:// sources are downloaded
        # into it (Xinference reads no s3:// URI): only a Xinference on this host can use them.
        if urlsplit(endpoint).hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise InputError(
                [
                    Problem(
                        "spec.models",
                        "",
                        f"{' and '.join(sorted(here_only))} sources are served from this host's "
                        f"state directory; Xinference at {endpoint} cannot read them: use hf://, "
                        "modelscope:// or file:// paths on its workers",
                    )
                ]
            )
        from xpool.local.models import resolve_local_sources

        state = state_dir_for(platform, None)
        state.mkdir(parents=True, exist_ok=True)
        wants = resolve_local_sources(wants, state, platform)
    if dry_run == "client":
        for want in wants:
            note(f"--dry-run=client: would ensure {', '.join(want.uids())} at {endpoint}")
        return
    api_key = api_key_from_env(platform)
    with XinferenceClient(endpoint, api_key) as client:
        note(f"Xinference {client.check_version()} at {endpoint}")
        if dry_run == "server":
            running = {i.uid for i in client.instances()}
            for want in wants:
                for uid in want.uids():
                    note(
                        f"--dry-run=server: {uid} would be {'kept' if uid in running else 'launched'}"
                    )
            return
        result = ensure_instances(client, wants, timeout=timeout, progress=note)
    rows = [(uid, "launched") for uid in result.launched]
    rows += [(uid, "relaunched") for uid in result.replaced]
    rows += [(uid, "unchanged") for uid in result.adopted]
    if output == "json":
        click.echo(json.dumps({"instances": [{"uid": u, "action": a} for u, a in rows]}, indent=2))
    else:
        emit_table("xinference instances", ("UID", "ACTION"), sorted(rows))


def _apply_kubernetes_part(
    kr: KubeRendering,
    kubeconfig: str | None,
    context: str | None,
    dry_run: str,
    force_conflicts: bool,
    prune: bool,
    output: str,
) -> None:
    from xpool.adapters.kube import ConflictError

    try:
        outcomes = apply_kubernetes(
            kr,
            kubeconfig=kubeconfig,
            context=context,
            dry_run=dry_run,
            force_conflicts=force_conflicts,
            prune=prune,
        )
    except ConflictError as exc:
        if exc.outcomes:
            print_outcomes(exc.outcomes, output, dry_run)
        note("stopped at the first conflict: objects after it were not applied")
        raise
    print_outcomes(outcomes, output, dry_run)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    note(", ".join(f"{n} {action}" for action, n in counts.items()) or "nothing to apply")
