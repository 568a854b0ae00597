"""`validate`: the platform file resolved (schema, references, shares, fit) and, on request,
rendered and checked, summarised in one line."""

from __future__ import annotations

from dataclasses import dataclass

from xpool.actions.render import check_kubernetes_version, render_checked
from xpool.render import Rendering
from xpool.render.checks import DEFAULT_K8S_VERSION
from xpool.resolve import ResolvedPlatform, resolve_platform


@dataclass(frozen=True)
class ValidateOptions:
    file: str
    rendered: bool = False
    kubernetes_version: str = DEFAULT_K8S_VERSION

    def validate(self) -> None:
        check_kubernetes_version(self.kubernetes_version)


@dataclass(frozen=True)
class ValidateResult:
    resolved: ResolvedPlatform
    rendering: Rendering | None  # None: --rendered not asked for

    def summary(self) -> str:
        spec = self.resolved.platform.spec
        text = f"{len(spec.pools)} pools, {len(spec.tiers)} tiers, {len(spec.models)} models"
        if self.rendering is None:
            return text
        if self.rendering.objects:
            return f"{text}; {len(self.rendering.objects)} rendered objects pass the checks"
        return f"{text}; no spec.kubernetes, so no objects to render"


def validate(options: ValidateOptions) -> ValidateResult:
    """Every problem of the file raises InputError (exit 2); a valid file returns its summary.
    Reads only the file, so it takes no runtime."""
    resolved = resolve_platform(options.file)
    rendering = render_checked(resolved, options.kubernetes_version) if options.rendered else None
    return ValidateResult(resolved, rendering)
