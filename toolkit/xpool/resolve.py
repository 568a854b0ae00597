"""The platform resolved once: loaded, checked, planned, with every derived value a command
needs, so that no command reads the file twice or derives the same thing its own way.

`resolve_platform(path, namespace=...)` applies the `-n/--namespace` override to the model
*and* to the source text (which the platform ConfigMap carries into the cluster, with the
config.json files it names: `mount`), so the rendered objects, the ConfigMap and the
in-cluster commands that load it agree.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from xpool.capacity.feasibility import fit_problems
from xpool.capacity.plan import CapacityPlan, plan_platform
from xpool.capacity.worker_fit import worker_fit_problems
from xpool.catalog.architectures import Architecture
from xpool.config.loader import LoadedPlatform, load_platform
from xpool.config.models import Model, Platform, not_a_system_namespace
from xpool.config.mounted import PLATFORM_KEY, SCALAR, Mount, mounted
from xpool.errors import InputError, Problem
from xpool.gc_paused import gc_paused
from xpool.render.check_meta import MAX_CONFIGMAP_BYTES
from xpool.render.instances import VersionWants, Want, stable_wants, version_wants
from xpool.render.launch import launch_specs
from xpool.render.object_names import PLATFORM_CONFIGMAP

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_NAMESPACE = "xpool"


@dataclass(frozen=True)
class ResolvedPlatform:
    """A valid platform file and what follows from it; everything downstream takes this."""

    loaded: LoadedPlatform  # as read: locates problems (FILE:LINE:COL)
    platform: Platform  # with the namespace override applied
    plan: CapacityPlan
    text: str  # the source text, with the namespace override applied
    fallback_namespace: str = DEFAULT_NAMESPACE  # -n for a file without spec.kubernetes

    @property
    def path(self) -> Path:
        return self.loaded.path

    @property
    def name(self) -> str:
        return self.platform.metadata.name

    @property
    def architectures(self) -> dict[str, Architecture]:
        return self.loaded.architectures

    @property
    def namespace(self) -> str:
        """spec.kubernetes.namespace (after -n); for a file without it, -n or the default."""
        kube = self.platform.spec.kubernetes
        return kube.namespace if kube is not None else self.fallback_namespace

    @cached_property
    def mount(self) -> Mount:
        """The platform ConfigMap: `text` and the config.json files it names, laid out as the
        in-cluster commands find them in the folder it is mounted as (config/mounted.py)."""
        return mounted(self.text, self.loaded.config_files)

    @cached_property
    def launch_specs(self) -> list[dict[str, Any]]:
        return launch_specs(self.platform, self.plan, self.architectures)

    def wants(self, *, at_least: int = 0) -> list[Want]:
        """Stable versions' instances: max(instances.min, at_least) of each model."""
        return stable_wants(self.platform, self.launch_specs, at_least=at_least)

    def version_wants(self, *, at_least: int = 1) -> VersionWants:
        """Every version as a Want (count 0) and the canaries the file's weights ask for."""
        return version_wants(self.platform, self.launch_specs, self.wants(at_least=at_least))

    def model(self, name: str) -> tuple[int, Model]:
        """The model called `name` and its index; exit 2 naming the known ones otherwise."""
        for index, model in enumerate(self.platform.spec.models):
            if model.name == name:
                return index, model
        known = ", ".join(m.name for m in self.platform.spec.models)
        raise InputError(
            [Problem(str(self.path), "spec.models", f"no model '{name}' (models: {known})")]
        )

    def problem(self, path: tuple[str | int, ...], message: str) -> Problem:
        return self.loaded.problem(path, message)


def resolve_platform(path: str | Path, *, namespace: str | None = None) -> ResolvedPlatform:
    """Load, check and plan `path`; InputError lists every problem (schema, references, fit)."""
    with gc_paused():
        loaded = load_platform(path)
        plan = plan_platform(loaded.platform, loaded.architectures)
        found = fit_problems(loaded.platform, plan) + worker_fit_problems(loaded.platform, plan)
    problems = [loaded.problem(p, msg) for p, msg in found]
    if problems:
        raise InputError(problems)
    platform, text = _with_namespace(loaded, namespace)
    resolved = ResolvedPlatform(loaded, platform, plan, text, namespace or DEFAULT_NAMESPACE)
    if platform.spec.kubernetes is not None:
        _refuse_oversized_configmap(resolved)
    return resolved


def _refuse_oversized_configmap(resolved: ResolvedPlatform) -> None:
    """The platform ConfigMap must hold the file and its config.json files within the API
    server's limit; the error points at the file, or at the config that crosses the limit."""
    mount = resolved.mount
    size = 0
    for key, text in mount.data.items():
        size += len(text.encode())
        if size <= MAX_CONFIGMAP_BYTES:
            continue
        over = (
            f"the ConfigMap {PLATFORM_CONFIGMAP}, which carries the platform file and the "
            f"config.json files it names into the cluster, would hold {size:,} bytes, over "
            f"the {MAX_CONFIGMAP_BYTES:,} bytes (1 MiB) a ConfigMap holds"
        )
        if key == PLATFORM_KEY:
            problem = Problem(
                f"{resolved.path}:1:1", "", f"{over}; shorten the file or split the platform"
            )
        else:
            where = ("spec", "models", mount.first_model[key], "architecture", "config")
            problem = resolved.problem(
                where,
                f"with this config.json ({len(text.encode()):,} bytes) {over}; keep only the "
                "keys the planner reads (drop tokenizer and generation settings) or name a "
                "catalog architecture",
            )
        raise InputError([problem])


def _with_namespace(loaded: LoadedPlatform, namespace: str | None) -> tuple[Platform, str]:
    if namespace:
        _refuse_system_namespace(namespace)
    platform, text = loaded.platform, loaded.source.text
    kube = platform.spec.kubernetes
    if kube is None or not namespace or namespace == kube.namespace:
        return platform, text
    if not DNS_LABEL.match(namespace):
        raise InputError(
            [Problem("-n/--namespace", "", f"{namespace!r} is not a DNS label (RFC 1123)")]
        )
    spec = platform.spec.model_copy(
        update={"kubernetes": kube.model_copy(update={"namespace": namespace})}
    )
    return platform.model_copy(update={"spec": spec}), _text_with_namespace(text, namespace)


def _refuse_system_namespace(namespace: str) -> None:
    """The flag obeys the rule the file's spec.kubernetes.namespace does."""
    try:
        not_a_system_namespace(namespace)
    except ValueError as exc:
        raise InputError([Problem("-n/--namespace", "", str(exc))]) from None


def _text_with_namespace(text: str, namespace: str) -> str:
    """The source with spec.kubernetes.namespace set: only that value's characters change
    (comments and layout stay byte for byte); a file that leaves the key to its default
    gets it added as the mapping's first key."""
    kube = YAML(typ="rt").load(text)["spec"]["kubernetes"]
    lines = text.splitlines(keepends=True)
    if kube and "namespace" in kube:
        line, col = kube.lc.value("namespace")
        old = SCALAR.match(lines[line], col)
        assert old is not None  # the parser put a scalar here
        lines[line] = lines[line][:col] + namespace + lines[line][old.end() :]
        return "".join(lines)
    if kube:  # a block mapping without the key: add it beside its first key
        first = next(iter(kube))
        line, col = kube.lc.key(first)
        lines.insert(line, f"{' ' * col}namespace: {namespace}\n")
        return "".join(lines)
    yaml = YAML(typ="rt")  # `kubernetes: {}`: no layout to keep
    root = yaml.load(text)
    root["spec"]["kubernetes"] = {"namespace": namespace}
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()
