"""Name formats the Kubernetes API server and Volcano require (k8s.io/apimachinery validation).

Each function returns None when the value is fine, else a short phrase saying what is wrong.
The platform file's checks use them on values that become Kubernetes names (node labels,
resource names), and the rendered-object checks on every object. Patterns are matched
whole (`fullmatch`): `$` alone would let a trailing newline through.
"""

from __future__ import annotations

import re

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            f"{value!r} is not a DNS-1123 label: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return f"{value!r} is longer than 253 characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return (
            f"{value!r} is not a DNS-1123 subdomain: use lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def dns1035_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _DNS1035_LABEL.fullmatch(value):
        return (
            f"{value!r} is not a DNS-1035 label: use lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return None


def path_segment_name(value: str) -> str | None:
    """RBAC object names: anything that can be one URL path segment."""
    if value in (".", ".."):
        return f"{value!r} may not be '.' or '..'"
    for bad in ("/", "%"):
        if bad in value:
            return f"{value!r} may not contain {bad!r}"
    return None


def qualified_name(value: str) -> str | None:
    """``[prefix/]name``, name <= 63 of alphanumerics, '-', '_', '.' (label keys, Volcano job names)."""
    prefix, _, name = value.rpartition("/")
    if "/" in prefix:
        return f"{value!r} has more than one '/'"
    if prefix:
        problem = dns1123_subdomain(prefix)
        if problem:
            return f"prefix of {value!r}: {problem}"
    if not name:
        return f"{value!r} has an empty name part; write [prefix/]name"
    if len(name) > 63:
        return f"{value!r}: the name part is longer than 63 characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return (
            f"{value!r} is not a qualified name: use letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def extended_resource_name(value: str) -> str | None:
    """A device plugin's resource, as requests, limits and Volcano queues accept it:
    `<domain>/<name>` outside kubernetes.io (apimachinery IsExtendedResourceName)."""
    if "/" not in value or "kubernetes.io/" in value or value.startswith("requests."):
        return (
            f"{value!r} is not an extended resource name: use the device plugin's "
            "<domain>/<name>, e.g. nvidia.com/gpu"
        )
    return qualified_name(value)


def label_value(value: str) -> str | None:
    if len(value) > 63:
        return f"{value!r} is longer than 63 characters"
    if not _LABEL_VALUE.fullmatch(value):
        return (
            f"{value!r} is not a label value: use letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (or leave it empty)"
        )
    return None
