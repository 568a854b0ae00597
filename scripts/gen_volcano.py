"""Generate the typed Volcano client (pydantic v2 models) from the Volcano CRDs.

Reads the CRDs from ``vendor/volcano-crds/`` in the repository (the upstream files, vendored with
their licence and commit; override with ``--crds DIR``), takes the ``openAPIV3Schema`` of the
served version xpool uses, preprocesses it and runs datamodel-code-generator on it, then formats
the result with ruff. Writes one module per kind under ``toolkit/xpool/volcano/``.

Preprocessing:
- every node with ``x-kubernetes-int-or-string: true`` becomes a ``$ref`` to one shared
  definition ``IntOrString`` (an integer or a string), so quantities accept ``4`` and ``"500m"``;
- a node with ``x-kubernetes-preserve-unknown-fields: true`` becomes a free-form value (a
  ``dict[str, Any]`` for an object, ``Any`` when it has no type), not a model refusing everything;
- an object without ``properties`` or ``additionalProperties`` (such as the root ``metadata``,
  which the API server validates as ObjectMeta) becomes a free-form ``dict[str, Any]``;
- the remaining ``x-kubernetes-*`` keys (list-type, list-map-keys, map-type, validations, ...) are
  dropped: they mean nothing to the generator;
- a few nodes get a title so their classes get stable, meaningful names (``QueueSpec``,
  ``PodSpec``, ...) instead of ``Spec1``, ``Spec2``.

Usage:
    python scripts/gen_volcano.py  # regenerate toolkit/xpool/volcano/{queue,podgroup,job}.py
    python scripts/gen_volcano.py --check  # exit 1 if a committed module is stale
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRDS = REPO_ROOT / "vendor" / "volcano-crds"
CRDS_DISPLAY = "vendor/volcano-crds"
OUT_DIR = REPO_ROOT / "toolkit" / "xpool" / "volcano"
REGENERATE = "python scripts/gen_volcano.py"
LINE_LENGTH = 100
INT_OR_STRING = "IntOrString"
INT_OR_STRING_REF = f"#/$defs/{INT_OR_STRING}"


@dataclass(frozen=True)
class Target:
    """One CRD and the module generated from it."""

    module: str
    crd: str
    kind: str
    group: str
    version: str
    # property path ("spec.tasks[].template") -> class name for that node
    titles: dict[str, str] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


TARGETS: tuple[Target, ...] = (
    Target(
        module="queue.py",
        crd="scheduling.volcano.sh_queues.yaml",
        kind="Queue",
        group="scheduling.volcano.sh",
        version="v1beta1",
        titles={"spec": "QueueSpec", "status": "QueueStatus"},
    ),
    Target(
        module="podgroup.py",
        crd="scheduling.volcano.sh_podgroups.yaml",
        kind="PodGroup",
        group="scheduling.volcano.sh",
        version="v1beta1",
        titles={"spec": "PodGroupSpec", "status": "PodGroupStatus"},
    ),
    Target(
        module="job.py",
        crd="batch.volcano.sh_jobs.yaml",
        kind="Job",
        group="batch.volcano.sh",
        version="v1alpha1",
        titles={
            "spec": "JobSpec",
            "status": "JobStatus",
            "spec.tasks[]": "TaskSpec",
            "spec.tasks[].template": "PodTemplateSpec",
            "spec.tasks[].template.metadata": "PodTemplateMetadata",
            "spec.volumes[]": "VolumeSpec",
            "spec.volumes[].volumeClaim": "PersistentVolumeClaimSpec",
            "spec.volumes[].volumeClaim.resources": "VolumeResourceRequirements",
            **{
                f"spec.tasks[].template.spec{path}": title
                for path, title in {
                    "": "PodSpec",
                    ".affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[]": (
                        "PreferredSchedulingTerm"
                    ),
                    ".affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution": (
                        "NodeSelector"
                    ),
                    ".affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[]": (
                        "WeightedPodAffinityTerm"
                    ),
                    ".affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[]": (
                        "WeightedPodAffinityTerm"
                    ),
                    ".containers[]": "Container",
                    ".initContainers[]": "Container",
                    ".ephemeralContainers[]": "EphemeralContainer",
                    **{
                        f".{containers}[].{prop}": title
                        for containers in ("containers", "initContainers", "ephemeralContainers")
                        for prop, title in (
                            ("resources", "ResourceRequirements"),
                            ("securityContext", "SecurityContext"),
                            ("livenessProbe", "Probe"),
                            ("readinessProbe", "Probe"),
                            ("startupProbe", "Probe"),
                            ("lifecycle.postStart", "LifecycleHandler"),
                            ("lifecycle.preStop", "LifecycleHandler"),
                        )
                    },
                    ".hostAliases[]": "HostAlias",
                    ".resources": "ResourceRequirements",
                    ".securityContext": "PodSecurityContext",
                    ".volumes[]": "Volume",
                    ".volumes[].configMap": "ConfigMapVolumeSource",
                    ".volumes[].configMap.items[]": "KeyToPath",
                    ".volumes[].downwardAPI": "DownwardAPIVolumeSource",
                    ".volumes[].downwardAPI.items[]": "DownwardAPIVolumeFile",
                    ".volumes[].ephemeral.volumeClaimTemplate.spec": "PersistentVolumeClaimSpec",
                    ".volumes[].ephemeral.volumeClaimTemplate.spec.resources": (
                        "VolumeResourceRequirements"
                    ),
                    ".volumes[].projected.sources[].configMap": "ConfigMapProjection",
                    ".volumes[].projected.sources[].downwardAPI": "DownwardAPIProjection",
                }.items()
            },
        },
    ),
)


class GenerationError(Exception):
    """The CRDs or the tools did not allow generating the modules."""


# --------------------------------------------------------------------------- CRD loading


def load_schema(crds_dir: Path, target: Target) -> dict[str, Any]:
    """Return the openAPIV3Schema of the target's version, checked against group and kind."""
    path = crds_dir / target.crd
    if not path.is_file():
        raise GenerationError(f"CRD file not found: {path}")
    crd = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    spec = crd.get("spec") or {}
    if crd.get("kind") != "CustomResourceDefinition":
        raise GenerationError(f"{path}: not a CustomResourceDefinition")
    if spec.get("group") != target.group or (spec.get("names") or {}).get("kind") != target.kind:
        raise GenerationError(f"{path}: expected {target.kind} in group {target.group}")
    for ver in spec.get("versions") or []:
        if ver.get("name") == target.version:
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                raise GenerationError(f"{path}: version {target.version} has no openAPIV3Schema")
            return schema
    raise GenerationError(f"{path}: no version {target.version}")


# --------------------------------------------------------------------------- preprocessing


@dataclass
class Stats:
    int_or_string: int = 0
    preserve_unknown: int = 0
    free_form_objects: int = 0


def _keep(node: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: node[k] for k in keys if k in node}


def preprocess_node(node: Any, stats: Stats) -> Any:
    """Rewrite one schema node (recursively) for the generator; see the module docstring."""
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string") is True:
        stats.int_or_string += 1
        return {"$ref": INT_OR_STRING_REF, **_keep(node, "description", "default")}
    if node.get("x-kubernetes-preserve-unknown-fields") is True:
        node_type = node.get("type")
        if node_type in (None, "object"):
            stats.preserve_unknown += 1
            free: dict[str, Any] = {} if node_type is None else {"type": "object"}
            if node_type == "object":
                free["additionalProperties"] = True
            return {**free, **_keep(node, "description", "default")}
        # on another type (an array) it only concerns the objects below, handled there

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: preprocess_node(sub, stats) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = preprocess_node(value, stats)
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [preprocess_node(sub, stats) for sub in value]
        else:  # description, enum, default, required, pattern, ...: data, copied as is
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        stats.free_form_objects += 1
        out["additionalProperties"] = True
    return out


def _node_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.split("."):
        is_item = part.endswith("[]")
        name = part.removesuffix("[]")
        try:
            node = node["properties"][name]
            if is_item:
                node = node["items"]
        except (KeyError, TypeError):
            raise GenerationError(f"no schema node at {path!r}") from None
    return node


def preprocess(schema: dict[str, Any], target: Target) -> tuple[dict[str, Any], Stats]:
    stats = Stats()
    out = preprocess_node(schema, stats)
    for path, title in sorted(target.titles.items()):
        _node_at(out, path)["title"] = title
    out["title"] = target.kind
    out["$defs"] = {
        INT_OR_STRING: {
            "description": "An integer or a string (x-kubernetes-int-or-string), e.g. a "
            'resource quantity: 4 or "500m".',
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
    }
    return out, stats


# --------------------------------------------------------------------------- generation


def header(target: Target) -> str:
    dcg_version = version("datamodel-code-generator")
    return "\n".join(
        [
            f"# Generated by scripts/gen_volcano.py from {CRDS_DISPLAY}/{target.crd}",
            f"# ({target.kind}, {target.api_version}) with datamodel-code-generator {dcg_version}.",
            f"# DO NOT EDIT BY HAND: change the script and run `{REGENERATE}`.",
            "# E501: schema descriptions are long strings that the formatter does not wrap;",
            "# RUF100: E501 is not selected under every ruff configuration.",
            "# ruff: noqa: E501, RUF100",
        ]
    )


def run_generator(schema: dict[str, Any], target: Target) -> str:
    from datamodel_code_generator import (
        DataModelType,
        InputFileType,
        PythonVersion,
        generate,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = generate(
            schema,
            input_file_type=InputFileType.JsonSchema,
            output_model_type=DataModelType.PydanticV2BaseModel,
            target_python_version=PythonVersion.PY_311,
            class_name=target.kind,
            use_title_as_name=True,
            snake_case_field=True,
            allow_population_by_field_name=True,
            extra_fields="forbid",
            use_annotated=True,
            field_constraints=True,
            enum_field_as_literal="all",
            use_schema_description=True,
            use_double_quotes=True,
            use_standard_collections=True,
            use_union_operator=True,
            use_type_alias=True,
            reuse_model=True,
            collapse_reuse_models=True,
            disable_timestamp=True,
            custom_file_header=header(target),
            formatters=[],
        )
    if not isinstance(code, str):
        raise GenerationError(f"{target.crd}: the generator returned {type(code).__name__}")
    return code


def find_ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ruff")
    if found is None:
        raise GenerationError("ruff not found (beside the Python interpreter or on PATH)")
    return found


def ruff(code: str, target: Target, *args: str) -> str:
    """Run one ruff command on code via stdin, with fixed settings (not the repo's config)."""
    cmd = [
        find_ruff(),
        *args,
        "--isolated",
        "--line-length",
        str(LINE_LENGTH),
        "--target-version",
        "py311",
        "--stdin-filename",
        target.module,
        "-",
    ]
    proc = subprocess.run(cmd, input=code, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GenerationError(f"{' '.join(cmd[:2])} failed on {target.module}:\n{proc.stderr}")
    return proc.stdout


def render(crds_dir: Path, target: Target) -> tuple[str, Stats]:
    schema, stats = preprocess(load_schema(crds_dir, target), target)
    code = run_generator(schema, target)
    # sort the imports the generator writes (isort style), then format; nothing else is fixed
    code = ruff(code, target, "check", "--fix", "--select", "I", "--quiet")
    return ruff(code, target, "format", "--quiet"), stats


def write_all(crds_dir: Path, out_dir: Path, verbose: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for target in TARGETS:
        code, stats = render(crds_dir, target)
        path = out_dir / target.module
        path.write_text(code, encoding="utf-8")
        written.append(path)
        if verbose:
            print(
                f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}"
                f" ({target.kind}: {stats.int_or_string} int-or-string, "
                f"{stats.preserve_unknown} preserve-unknown-fields, "
                f"{stats.free_form_objects} free-form objects)"
            )
    return written


def check(crds_dir: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="gen_volcano_") as tmp:
        write_all(crds_dir, Path(tmp), verbose=False)
        stale = [
            f"toolkit/xpool/volcano/{t.module}"
            for t in TARGETS
            if not (OUT_DIR / t.module).is_file()
            or (OUT_DIR / t.module).read_bytes() != (Path(tmp) / t.module).read_bytes()
        ]
    if stale:
        print(
            f"gen_volcano: stale generated file(s): {', '.join(stale)}; "
            f"regenerate with `{REGENERATE}`",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--crds",
        type=Path,
        default=DEFAULT_CRDS,
        help=f"directory holding the Volcano CRDs (default: {CRDS_DISPLAY} from the repo root)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temporary directory; exit 1 if the committed modules differ",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check(args.crds)
        write_all(args.crds, OUT_DIR, verbose=True)
    except GenerationError as exc:
        print(f"gen_volcano: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
