"""What the builders produce: one `Item` per object to render, collected in a `Built`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    """One object to render: its template, the values, and its apply-order group. A `shared`
    object is the cluster's, used by every platform on it (Volcano's scheduler configuration):
    `xpool apply` keeps it out of the platform's ApplySet, so no platform's prune deletes it."""

    order: int
    kind: str
    name: str
    template: str
    values: dict[str, Any]
    volcano: bool = False
    shared: bool = False


@dataclass
class Built:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, order: int, kind: str, template: str, *, shared: bool = False, **values: Any
    ) -> None:
        volcano = kind in ("Queue", "Job", "PodGroup")
        self.items.append(Item(order, kind, values["name"], template, values, volcano, shared))
