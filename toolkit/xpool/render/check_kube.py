"""Core Kubernetes kinds against the OpenAPI schemas shipped in ``kubernetes-validate`` (strict).

``kubernetes_validate.validate`` re-reads its 1.8 MB definitions file on every call and stops at
the first error; here the same packaged schemas are loaded once per (version, kind) and every
error is reported. Strict schemas set ``additionalProperties: false``, so unknown fields are
refused. No network: the schemas are package data.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import referencing
from referencing import Registry, Resource

from xpool.render.check_types import CheckProblem, api_group, join_path, object_ref


class UnsupportedKubernetesVersion(ValueError):
    """The installed kubernetes-validate ships no schemas for the requested version."""


def supported_kubernetes_versions() -> list[str]:
    """``major.minor`` versions the installed kubernetes-validate has schemas for, oldest first."""
    return sorted({kv.major_minor(v) for v in kv.all_versions()}, key=_minor_tuple)


def _minor_tuple(version: str) -> tuple[int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?$", version.strip())
    if match is None:
        raise UnsupportedKubernetesVersion(
            f"Kubernetes version {version!r} is not of the form 1.33 (or v1.33.2)"
        )
    return int(match[1]), int(match[2])


@functools.cache
def resolve_kubernetes_version(version: str) -> str:
    """The shipped schema version (``1.33.0``) used for ``version``: the newest not newer than it."""
    wanted = _minor_tuple(version)
    shipped = kv.all_versions()
    usable = [v for v in shipped if _minor_tuple(v) <= wanted]
    if not usable or wanted > _minor_tuple(shipped[-1]):
        raise UnsupportedKubernetesVersion(
            f"kubernetes-validate {kv.__version__} has no schemas for Kubernetes {version}; "
            f"choose one of {', '.join(supported_kubernetes_versions())}"
        )
    return usable[-1]


def is_core_group(api_version: str) -> bool:
    """Groups served by Kubernetes itself: core, ``apps``, ``batch``, ``*.k8s.io``."""
    group = api_group(api_version)
    return "." not in group or group.endswith(".k8s.io")


def _schema_file(kind: str, api_version: str) -> str:
    # kubernetes-validate's naming: rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1.
    slug = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{slug}.json"


@functools.cache
def _definitions(schema_version: str) -> Resource:
    contents = kv.schema_contents(
        f"kubernetes-json-schema/v{schema_version}-local-strict/_definitions.json", schema_version
    )
    return Resource.from_contents(contents)


@functools.cache
def _validator(schema_version: str, kind: str, api_version: str) -> Any:
    """A validator for (kind, apiVersion), or None when the version has no schema for it."""
    try:
        schema = kv.schema_contents(
            f"kubernetes-json-schema/v{schema_version}-local-strict/{_schema_file(kind, api_version)}",
            schema_version,
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ (_definitions(schema_version) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _kind_known(schema_version: str, kind: str) -> list[str]:
    """apiVersions of ``kind`` among the common groups, to suggest when the given one is wrong."""
    candidates = ["v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"]
    candidates += ["scheduling.k8s.io/v1", "networking.k8s.io/v1", "policy/v1", "autoscaling/v2"]
    candidates += ["coordination.k8s.io/v1", "storage.k8s.io/v1", "admissionregistration.k8s.io/v1"]
    return [c for c in candidates if _validator(schema_version, kind, c) is not None]


def check_core_schema(obj: dict[str, Any], kubernetes_version: str) -> list[CheckProblem]:
    """Validate one object of a Kubernetes-served group; [] for groups served by CRDs."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    if not is_core_group(api_version):
        return []
    where = object_ref(obj)
    schema_version = resolve_kubernetes_version(kubernetes_version)
    shown = kv.major_minor(schema_version)
    validator = _validator(schema_version, kind, api_version)
    if validator is None:
        known = _kind_known(schema_version, kind)
        hint = f"use apiVersion {' or '.join(known)}" if known else "check kind and apiVersion"
        return [
            CheckProblem(
                where,
                "apiVersion",
                f"Kubernetes {shown} serves no {kind} in {api_version}: {hint}",
                "kubernetes.schema.kind",
            )
        ]
    problems: list[CheckProblem] = []
    try:
        errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    except referencing.exceptions.Unresolvable as exc:  # pragma: no cover - broken package data
        return [
            CheckProblem(
                where, "", f"schema of {kind} cannot be resolved: {exc}", "kubernetes.schema"
            )
        ]
    for error in errors:
        problems += _translate(where, kind, shown, error)
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _translate(where: str, kind: str, version: str, error: Any) -> list[CheckProblem]:
    at = tuple(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = sorted(str(k) for k in instance if k not in allowed)
        return [
            CheckProblem(
                where,
                join_path(*at, extra),
                f"unknown field {extra!r}: the Kubernetes {version} schema of {kind} has no such "
                "field here; remove it or fix its spelling",
                "kubernetes.schema.unknown-field",
            )
            for extra in extras
        ]
    if error.validator == "required" and isinstance(instance, dict):
        missing = [f for f in error.validator_value if f not in instance]
        return [
            CheckProblem(
                where,
                join_path(*at, field),
                f"required field {field!r} is missing (Kubernetes {version} schema of {kind}): set it",
                "kubernetes.schema.required",
            )
            for field in missing
        ]
    if error.validator == "type":
        expected = error.validator_value
        expected = (
            [t for t in expected if t != "null"] if isinstance(expected, list) else [expected]
        )
        message = f"must be of type {' or '.join(expected)}, got {_short(instance)}"
    elif error.validator == "enum":
        choices = [c for c in error.validator_value if c is not None]
        message = f"must be one of {', '.join(map(repr, choices))}, got {_short(instance)}"
    elif error.validator in ("oneOf", "anyOf"):
        message = f"{_short(instance)} has the wrong type for this field"
    else:
        message = error.message
    return [
        CheckProblem(
            where,
            join_path(*at),
            f"{message} (Kubernetes {version} schema of {kind}); fix the value",
            "kubernetes.schema",
        )
    ]
