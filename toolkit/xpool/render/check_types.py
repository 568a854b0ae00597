"""What a check of rendered objects reports, and small helpers shared by the check modules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpool.errors import Problem


@dataclass(frozen=True)
class CheckProblem(Problem):
    """One thing wrong with one rendered object.

    ``where`` names the object as ``Kind/namespace/name`` (``Kind/name`` when it has no
    namespace), ``path`` the field (``spec.deserved.cpu``, ``spec.tasks[0].name``) and
    ``message`` says in one line what is wrong and what to do. ``rule`` is a short stable id
    (``volcano.queue.deserved-ge-guarantee``) for tests, docs and suppression lists.
    """

    rule: str = ""

    @property
    def object(self) -> str:
        return self.where


def object_ref(obj: Any) -> str:
    """``Kind/namespace/name`` (or ``Kind/name``) of a rendered object, tolerating bad shapes."""
    if not isinstance(obj, dict):
        return f"<{type(obj).__name__}>"
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) and obj.get("kind") else "<no kind>"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = (
        meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else "<no name>"
    )
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and namespace:
        return f"{kind}/{namespace}/{name}"
    return f"{kind}/{name}"


def join_path(*parts: str | int) -> str:
    """Join field-path parts: names with dots, list indexes as ``[i]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else str(part)
    return out


def dig(obj: Any, *keys: str | int) -> Any:
    """``obj[k1][k2]...`` or None when a step is missing or has the wrong type."""
    cur = obj
    for key in keys:
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return None
            cur = cur[key]
        else:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(key)
    return cur


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def api_group(api_version: str) -> str:
    """``apps`` for ``apps/v1``, ``""`` for the core group ``v1``."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def labels_of(obj: dict[str, Any]) -> dict[str, Any]:
    return as_dict(dig(obj, "metadata", "labels"))
