"""Structural checks every rendered object gets, whatever its kind.

apiVersion, kind and metadata.name present; the name in the format the API server requires for
that kind; namespace a DNS-1123 label and absent on cluster-scoped kinds; label keys and values
and annotation keys well formed. This is the only check of kinds that neither
kubernetes-validate nor the Volcano client knows (e.g. PrometheusRule from
monitoring.coreos.com): their specs are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from xpool.config import kube_names as names
from xpool.render.check_types import CheckProblem, join_path, object_ref

# Kinds the API server stores without a namespace (the ones xpool renders or might).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "PriorityClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PersistentVolume",
        "Node",
        "Queue",
        "HyperNode",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)

# Name rules of the API server per kind (k8s pkg/apis/*/validation); DNS-1123 subdomain otherwise.
_NAME_RULES: dict[str, Callable[[str], str | None]] = {
    "Namespace": names.dns1123_label,
    "Service": names.dns1035_label,
    "Role": names.path_segment_name,
    "RoleBinding": names.path_segment_name,
    "ClusterRole": names.path_segment_name,
    "ClusterRoleBinding": names.path_segment_name,
}
# pkg/apis/batch/validation: a CronJob's name leaves room for the Job names it generates.
_CRONJOB_MAX_NAME = 52
# k8s apimachinery ValidateAnnotations: total size of keys and values.
_MAX_ANNOTATIONS_BYTES = 256 * 1024


def name_problem(kind: str, name: str) -> str | None:
    problem = _NAME_RULES.get(kind, names.dns1123_subdomain)(name)
    if problem is None and kind == "CronJob" and len(name) > _CRONJOB_MAX_NAME:
        problem = f"{name!r} is longer than {_CRONJOB_MAX_NAME} characters (CronJob names)"
    return problem


def check_structure(obj: Any) -> tuple[list[CheckProblem], bool]:
    """Problems of shape and metadata; the flag says whether deeper checks can run."""
    where = object_ref(obj)

    def problem(path: str, message: str, rule: str) -> CheckProblem:
        return CheckProblem(where=where, path=path, message=message, rule=rule)

    if not isinstance(obj, dict):
        msg = "a rendered object must be a mapping with apiVersion, kind and metadata"
        return [problem("", msg, "structure.object")], False
    problems: list[CheckProblem] = []
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj.get(field):
            problems.append(
                problem(field, f"{field} is missing or not a string: set it", "structure.required")
            )
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        problems.append(
            problem("metadata", "metadata is missing: set metadata.name", "structure.required")
        )
        return problems, False
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        problems.append(
            problem(
                "metadata.name",
                "metadata.name is missing: server-side apply needs a fixed name (generateName is not enough)",
                "structure.required",
            )
        )
    if problems:
        return problems, False

    kind = obj["kind"]
    bad_name = name_problem(kind, name)
    if bad_name:
        problems.append(
            problem("metadata.name", f"{bad_name}; rename the {kind}", "structure.name-format")
        )
    namespace = meta.get("namespace")
    if namespace is not None:
        if kind in CLUSTER_SCOPED:
            problems.append(
                problem(
                    "metadata.namespace",
                    f"{kind} is cluster-scoped: remove metadata.namespace",
                    "structure.cluster-scoped-namespace",
                )
            )
        elif not isinstance(namespace, str) or names.dns1123_label(namespace):
            detail = (
                names.dns1123_label(namespace) if isinstance(namespace, str) else "not a string"
            )
            problems.append(
                problem(
                    "metadata.namespace",
                    f"{detail}; fix the namespace",
                    "structure.namespace-format",
                )
            )
    problems += check_labels_and_annotations(meta, ("metadata",), where)
    return problems, True


def check_labels_and_annotations(
    meta: dict[str, Any], at: tuple[str | int, ...], where: str
) -> list[CheckProblem]:
    """Label keys/values and annotation keys/values as the API server validates them."""
    problems: list[CheckProblem] = []
    labels = meta.get("labels")
    if labels is not None and not isinstance(labels, dict):
        problems.append(
            CheckProblem(
                where, join_path(*at, "labels"), "labels must be a mapping", "structure.labels"
            )
        )
    for key, value in (labels or {}).items() if isinstance(labels, dict) else ():
        path = join_path(*at, "labels", key)
        bad = names.qualified_name(str(key))
        if bad:
            problems.append(CheckProblem(where, path, f"label key {bad}", "structure.labels"))
        elif not isinstance(value, str):
            problems.append(
                CheckProblem(
                    where,
                    path,
                    f"label value {value!r} must be a string: quote it",
                    "structure.labels",
                )
            )
        elif (bad := names.label_value(value)) is not None:
            problems.append(CheckProblem(where, path, f"label value {bad}", "structure.labels"))
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        problems.append(
            CheckProblem(
                where,
                join_path(*at, "annotations"),
                "annotations must be a mapping",
                "structure.annotations",
            )
        )
        return problems
    size = 0
    for key, value in (annotations or {}).items():
        path = join_path(*at, "annotations", key)
        bad = names.qualified_name(str(key))
        if bad:
            problems.append(
                CheckProblem(where, path, f"annotation key {bad}", "structure.annotations")
            )
        if not isinstance(value, str):
            problems.append(
                CheckProblem(
                    where,
                    path,
                    f"annotation value {value!r} must be a string: quote it",
                    "structure.annotations",
                )
            )
        else:
            size += len(str(key)) + len(value.encode())
    if size > _MAX_ANNOTATIONS_BYTES:
        problems.append(
            CheckProblem(
                where,
                join_path(*at, "annotations"),
                f"annotations total {size} bytes, over the API server's 256 KiB limit: "
                "move large content into a ConfigMap",
                "structure.annotations",
            )
        )
    return problems


# k8s pkg/apis/core/validation ValidateConfigMap: keys like file names, data at most 1 MiB.
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIGMAP_BYTES = 1024 * 1024


def check_configmap(obj: dict[str, Any]) -> list[CheckProblem]:
    """ConfigMap keys and total size, which the OpenAPI schema does not constrain."""
    if obj.get("kind") != "ConfigMap" or obj.get("apiVersion") != "v1":
        return []
    where = object_ref(obj)
    problems: list[CheckProblem] = []
    size = 0
    for field in ("data", "binaryData"):
        section = obj.get(field)
        for key, value in section.items() if isinstance(section, dict) else ():
            if len(str(key)) > 253 or not _CONFIGMAP_KEY.match(str(key)) or key in (".", ".."):
                problems.append(
                    CheckProblem(
                        where,
                        join_path(field, str(key)),
                        f"key {key!r} must consist of letters, digits, '-', '_' or '.' "
                        "(at most 253 characters): rename it",
                        "structure.configmap-key",
                    )
                )
            if isinstance(value, str):
                size += len(value.encode())
    if size > MAX_CONFIGMAP_BYTES:
        problems.append(
            CheckProblem(
                where,
                "data",
                f"holds {size} bytes, over the API server's 1 MiB limit for a ConfigMap: "
                "split it into several ConfigMaps",
                "structure.configmap-size",
            )
        )
    return problems
