"""Checks of the pod templates inside workloads: resource amounts and template labels.

The Kubernetes OpenAPI schema types a quantity as "string or number" and the Volcano CRD as
int-or-string, so neither checks the format; the API server does (ValidateResourceRequirements
in k8s pkg/apis/core/validation). These checks do it offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from xpool.render.check_meta import check_labels_and_annotations
from xpool.render.check_quantity import (
    QuantityError,
    format_quantity,
    is_extended_resource,
    parse_quantity,
    quantity_value_problem,
)
from xpool.render.check_types import CheckProblem, as_dict, as_list, dig, join_path, object_ref

Path = tuple[str | int, ...]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, template) of every pod template in a workload; a template has metadata and spec."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind == "Pod":
        yield (), obj
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") or (
        kind == "Job" and api_version == "batch/v1"
    ):
        template = dig(obj, "spec", "template")
        if isinstance(template, dict):
            yield ("spec", "template"), template
    elif kind == "CronJob":
        template = dig(obj, "spec", "jobTemplate", "spec", "template")
        if isinstance(template, dict):
            yield ("spec", "jobTemplate", "spec", "template"), template
    elif (
        kind == "Job"
        and isinstance(api_version, str)
        and api_version.startswith("batch.volcano.sh/")
    ):
        for i, task in enumerate(as_list(dig(obj, "spec", "tasks"))):
            template = dig(task, "template")
            if isinstance(template, dict):
                yield ("spec", "tasks", i, "template"), template


def containers(template: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path relative to the template, container) for containers and init containers."""
    spec = as_dict(template.get("spec"))
    for field in ("initContainers", "containers"):
        for j, container in enumerate(as_list(spec.get(field))):
            if isinstance(container, dict):
                yield ("spec", field, j), container


def requested_resources(container: dict[str, Any]) -> dict[str, str]:
    """Resource name -> the field that asks for it ("requests" or "limits"; limits imply requests)."""
    out: dict[str, str] = {}
    for field in ("limits", "requests"):
        for name in as_dict(dig(container, "resources", field)):
            out[name] = field
    return out


def check_pod_templates(obj: dict[str, Any]) -> list[CheckProblem]:
    where = object_ref(obj)
    problems: list[CheckProblem] = []
    for at, template in pod_templates(obj):
        meta = template.get("metadata")
        if isinstance(meta, dict) and at:
            problems += check_labels_and_annotations(meta, (*at, "metadata"), where)
        for rel, container in containers(template):
            problems += _check_resources(
                where, (*at, *rel, "resources"), container.get("resources")
            )
    return problems


def _check_resources(where: str, at: Path, resources: Any) -> list[CheckProblem]:
    problems: list[CheckProblem] = []
    amounts: dict[str, dict[str, Fraction]] = {"requests": {}, "limits": {}}
    for field in ("requests", "limits"):
        for name, value in as_dict(dig(resources, field)).items():
            bad = quantity_value_problem(name, value)
            if bad:
                problems.append(
                    CheckProblem(
                        where,
                        join_path(*at, field, name),
                        f"{bad}; fix the {field} of {name}",
                        "pod.quantity",
                    )
                )
                continue
            try:
                amounts[field][name] = parse_quantity(value)
            except QuantityError:  # pragma: no cover - quantity_value_problem caught it
                continue
    requests, limits = amounts["requests"], amounts["limits"]
    for name, request in requests.items():
        path = join_path(*at, "requests", name)
        limit = limits.get(name)
        if is_extended_resource(name):
            # ValidateResourceRequirements: extended resources cannot be overcommitted.
            if limit is None:
                problems.append(
                    CheckProblem(
                        where,
                        path,
                        f"{name} is requested without a limit: the API server requires limits.{name} "
                        "equal to the request for extended resources; set both",
                        "pod.extended-resource-limit",
                    )
                )
            elif limit != request:
                problems.append(
                    CheckProblem(
                        where,
                        path,
                        f"request {format_quantity(request)} differs from limit {format_quantity(limit)}: "
                        f"extended resources such as {name} cannot be overcommitted; make them equal",
                        "pod.extended-resource-limit",
                    )
                )
        elif limit is not None and request > limit:
            problems.append(
                CheckProblem(
                    where,
                    path,
                    f"request {format_quantity(request)} exceeds limit {format_quantity(limit)}: "
                    "lower the request or raise the limit",
                    "pod.request-le-limit",
                )
            )
    return problems
