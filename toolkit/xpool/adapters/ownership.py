"""Whose an existing object is: what `xpool apply` reads before it takes anything over.

Server-side apply lets a new field manager add fields, labels included, to any object without
a conflict, so an apply alone would adopt an object of the same name that someone else
created, and a later prune would delete it. `Applier` therefore reads every target first and
refuses, naming each object with the managers and the Helm release or ApplySet found on it,
unless the operator passes `--adopt`.
"""

from __future__ import annotations

from typing import Any

PART_OF = "applyset.kubernetes.io/part-of"
PLATFORM_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"


def _meta(live: dict[str, Any]) -> dict[str, Any]:
    return live.get("metadata") or {}


def field_managers(live: dict[str, Any]) -> list[str]:
    """The field managers recorded on `live`, in the order first seen."""
    managers = (str(e.get("manager") or "?") for e in _meta(live).get("managedFields") or [])
    return list(dict.fromkeys(managers))


def member_of(live: dict[str, Any], applyset: str) -> bool:
    return (_meta(live).get("labels") or {}).get(PART_OF) == applyset


def owners(live: dict[str, Any]) -> str:
    """Who manages `live`, for one error line: its ApplySet (and platform), its Helm release,
    its field managers."""
    meta = _meta(live)
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    parts = []
    if labels.get(PART_OF):
        platform = labels.get(PLATFORM_LABEL)
        parts.append(
            f"ApplySet {labels[PART_OF]}" + (f" (platform {platform})" if platform else "")
        )
    if notes.get(HELM_RELEASE) or str(labels.get(MANAGED_BY, "")).lower() == "helm":
        release = notes.get(HELM_RELEASE, "?")
        where = notes.get(HELM_NAMESPACE)
        parts.append(f"Helm release {release}" + (f" in {where}" if where else ""))
    managers = field_managers(live)
    parts.append(
        f"field managers: {', '.join(managers)}" if managers else "no field manager recorded"
    )
    return "; ".join(parts)
