"""`apply`: validate and render a platform file, check the models' inputs (sources, the API
key), server-side apply its Kubernetes objects, then make the remote Xinference hold its
models (actions/apply_models.py). Bad input stops it before the first write.

Kubernetes: discovery (every kind must be served before the first write), every target read
and refused when it exists and is not this platform's (unless --adopt), server-side apply
with field manager `xpool` in the renderer's order, writes only where a dry run shows a
change, ApplySet pruning, bounded retries (adapters/kube.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from xpool.actions.apply_models import InstanceOutcome, apply_models, prepare_models
from xpool.actions.render import check_kubernetes_version, render_file
from xpool.actions.runtime import Runtime
from xpool.adapters.kube import Applier, ConflictError, Outcome
from xpool.errors import InputError
from xpool.render import Rendering
from xpool.render.checks import DEFAULT_K8S_VERSION

DRY_RUNS = ("none", "client", "server")
ShowObjects = Callable[[list[Outcome]], None]


@dataclass(frozen=True)
class ApplyOptions:
    file: str
    namespace: str | None = None  # -n: replaces spec.kubernetes.namespace
    dry_run: str = "none"
    force_conflicts: bool = False
    adopt: bool = False  # take over existing objects that are not this platform's
    prune: bool = True
    skip_models: bool = False
    timeout: float = 600.0  # seconds per Xinference instance; unused with --skip-models
    kubernetes_version: str = DEFAULT_K8S_VERSION

    def validate(self) -> None:
        """Refuse flags that contradict each other (exit 2 naming them). Accepted: --prune
        with --dry-run=client (pruning is the default; a client dry run, contacting nothing,
        simply computes none) and --timeout with --skip-models (unused)."""
        if self.dry_run not in DRY_RUNS:
            raise InputError(f"--dry-run={self.dry_run}: choose one of {', '.join(DRY_RUNS)}")
        if self.force_conflicts and self.dry_run == "client":
            raise InputError(
                "--force-conflicts with --dry-run=client: a client dry run sends nothing, so "
                "nothing can be forced; drop one of the two (--dry-run=server shows conflicts)"
            )
        if self.adopt and self.dry_run == "client":
            raise InputError(
                "--adopt with --dry-run=client: a client dry run reads nothing, so there is "
                "nothing to adopt; drop one of the two (--dry-run=server shows what would be)"
            )
        check_kubernetes_version(self.kubernetes_version)


@dataclass(frozen=True)
class ApplyResult:
    objects: list[Outcome] | None  # None: the file has no spec.kubernetes
    instances: list[InstanceOutcome] | None  # None: skipped, embedded, or a dry run


def _ignore(_: list[Outcome]) -> None:
    pass


def apply(
    options: ApplyOptions, runtime: Runtime, show_objects: ShowObjects = _ignore
) -> ApplyResult:
    """Apply the Kubernetes objects, then the models. `show_objects` receives the objects'
    outcomes as soon as the Kubernetes half ends, also when a field conflict stops it, so a
    caller can report them before the Xinference half starts or the conflict is raised."""
    resolved, rendering = render_file(
        options.file, options.kubernetes_version, runtime, namespace=options.namespace
    )
    models = None
    if not options.skip_models:  # every input checked before the first write
        models = prepare_models(resolved, dry_run=options.dry_run, runtime=runtime)
    kube = resolved.platform.spec.kubernetes
    objects = None
    if kube is None:
        runtime.log(f"{options.file}: spec.kubernetes is absent: skipping the Kubernetes part")
    else:
        objects = _apply_objects(rendering, kube.namespace, options, runtime, show_objects)
    if options.skip_models:
        runtime.log("--skip-models: Xinference registrations and instances left as they are")
        return ApplyResult(objects, None)
    instances = None
    if models is not None:
        instances = apply_models(
            models, dry_run=options.dry_run, timeout=options.timeout, runtime=runtime
        )
    return ApplyResult(objects, instances)


def _apply_objects(
    rendering: Rendering,
    namespace: str,
    options: ApplyOptions,
    runtime: Runtime,
    show_objects: ShowObjects,
) -> list[Outcome]:
    try:
        outcomes = _send(rendering, namespace, options, runtime)
    except ConflictError as exc:
        if exc.outcomes:
            show_objects(exc.outcomes)
        runtime.log("stopped at the first conflict: objects after it were not applied")
        raise
    show_objects(outcomes)
    counts = Counter(o.action for o in outcomes)
    runtime.log(", ".join(f"{n} {action}" for action, n in counts.items()) or "nothing to apply")
    return outcomes


def _send(
    rendering: Rendering, namespace: str, options: ApplyOptions, runtime: Runtime
) -> list[Outcome]:
    """One outcome per object touched; a client dry run contacts nothing."""
    if options.dry_run == "client":
        runtime.log(
            "--dry-run=client: rendered and checked locally; the cluster was not contacted "
            "(no discovery, no dry-run requests, pruning not computed)"
        )
        return [
            Outcome(str(o.obj["apiVersion"]), o.kind, o.namespace, o.name, "would apply")
            for o in rendering.objects
        ]
    server = options.dry_run == "server"
    client = runtime.kube()
    try:
        applier = Applier(client, namespace, log=runtime.log)
        targets = applier.resolve((o.obj, o.shared) for o in rendering.objects)
        runtime.log(
            f"applying {len(targets)} objects to {client.host} (namespace {namespace}, "
            f"field manager xpool{', server dry run' if server else ''})"
        )
        return applier.apply(
            targets,
            dry_run=server,
            force=options.force_conflicts,
            prune=options.prune,
            adopt=options.adopt,
        )
    finally:
        client.close()
