"""Rendering with the built-in checks: what `render` prints, `validate --rendered` counts,
and `diff` and `apply` send. A set that fails a check never leaves this module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xpool.actions.runtime import Runtime
from xpool.errors import InputError, Problem
from xpool.gc_paused import gc_paused
from xpool.render import Rendering, render_platform
from xpool.render.check_kube import resolve_kubernetes_version
from xpool.render.checks import (
    DEFAULT_K8S_VERSION,
    UnsupportedKubernetesVersion,
    check_objects,
    supported_kubernetes_versions,
)
from xpool.resolve import ResolvedPlatform, resolve_platform


def check_kubernetes_version(kubernetes_version: str) -> None:
    """Refuse (exit 2) a --kubernetes-version the installed schemas do not cover, before
    anything is loaded, so a typo is not reported as a problem of the objects."""
    try:
        resolve_kubernetes_version(kubernetes_version)
    except UnsupportedKubernetesVersion:
        known = ", ".join(supported_kubernetes_versions())
        raise InputError(
            f"--kubernetes-version {kubernetes_version} is not supported (known: {known})"
        ) from None


def render_checked(resolved: ResolvedPlatform, kubernetes_version: str) -> Rendering:
    """Render from the resolved mount (so the platform ConfigMap carries any -n override and
    the config.json files the file names), then check every object; refuse (exit 2) a set
    that fails."""
    check_kubernetes_version(kubernetes_version)
    with gc_paused():
        rendering = render_platform(
            resolved.platform, resolved.plan, resolved.architectures, resolved.mount
        )
        problems = check_objects(
            [o.obj for o in rendering.objects], kubernetes_version=kubernetes_version
        )
    if problems:
        raise InputError(list(problems))
    return rendering


def render_file(
    file: str, kubernetes_version: str, runtime: Runtime, *, namespace: str | None = None
) -> tuple[ResolvedPlatform, Rendering]:
    """Resolve FILE once (with the -n override), render, check, and log the renderer's notes:
    what render prints and what diff and apply send are the same objects."""
    resolved = resolve_platform(file, namespace=namespace)
    rendering = render_checked(resolved, kubernetes_version)
    for line in rendering.notes:
        runtime.log(f"note: {line}")
    return resolved, rendering


@dataclass(frozen=True)
class RenderOptions:
    file: str
    namespace: str | None = None  # -n: replaces spec.kubernetes.namespace, as in apply
    out_dir: str | None = None
    launch_specs: bool = False
    kubernetes_version: str = DEFAULT_K8S_VERSION

    def validate(self) -> None:
        if self.out_dir is not None and self.launch_specs:
            raise InputError(
                "--out writes the Kubernetes objects and --launch-specs prints the launch "
                "specs: pass one of them"
            )
        check_kubernetes_version(self.kubernetes_version)


@dataclass(frozen=True)
class RenderResult:
    rendering: Rendering
    written: Path | None = None  # the --out directory, once every file is in it


def render(options: RenderOptions, runtime: Runtime) -> RenderResult:
    """Render and check FILE; with --out (and objects to write), write one file per object."""
    _, rendering = render_file(
        options.file, options.kubernetes_version, runtime, namespace=options.namespace
    )
    if options.out_dir is None or not rendering.objects:
        return RenderResult(rendering)
    directory = Path(options.out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, doc in rendering.files():
            (directory / name).write_text(doc, encoding="utf-8")
    except OSError as exc:
        raise InputError([Problem(options.out_dir, "", f"cannot write: {exc}")]) from None
    return RenderResult(rendering, directory)
