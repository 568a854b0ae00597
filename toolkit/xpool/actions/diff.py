"""`diff`: what `apply` would change, from server-side dry runs only (nothing is written)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from xpool.actions.render import check_kubernetes_version, render_file
from xpool.actions.runtime import Runtime
from xpool.adapters.kube import Applier, ObjectDiff
from xpool.render.checks import DEFAULT_K8S_VERSION


@dataclass(frozen=True)
class DiffOptions:
    file: str
    namespace: str | None = None  # -n: replaces spec.kubernetes.namespace
    prune: bool = True
    kubernetes_version: str = DEFAULT_K8S_VERSION

    def validate(self) -> None:
        check_kubernetes_version(self.kubernetes_version)


@dataclass(frozen=True)
class DiffResult:
    kubernetes: bool  # False: the file has no spec.kubernetes, so nothing was compared
    diffs: list[ObjectDiff] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        """Objects per change (create, update, delete, conflict, adopt), unchanged ones left
        out."""
        return Counter(d.change for d in self.diffs if d.change != "none")

    @property
    def changed(self) -> int:
        return sum(self.counts.values())


def diff(options: DiffOptions, runtime: Runtime) -> DiffResult:
    """Dry-run every rendered object (and, with prune, list what pruning would delete)."""
    resolved, rendering = render_file(
        options.file, options.kubernetes_version, runtime, namespace=options.namespace
    )
    kube = resolved.platform.spec.kubernetes
    if kube is None:
        runtime.log(f"{options.file}: spec.kubernetes is absent: no Kubernetes objects to compare")
        return DiffResult(kubernetes=False)
    client = runtime.kube()
    try:
        applier = Applier(client, kube.namespace, log=runtime.log)
        targets = applier.resolve((o.obj, o.shared) for o in rendering.objects)
        return DiffResult(kubernetes=True, diffs=applier.diff(targets, prune=options.prune))
    finally:
        client.close()
