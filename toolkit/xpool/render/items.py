"""What the builders produce: one `Item` per object to render, collected in a `Built`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    """One object to render: its template, the values, and its apply-order group."""

    order: int
    kind: str
    name: str
    template: str
    values: dict[str, Any]
    volcano: bool = False


@dataclass
class Built:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, order: int, kind: str, template: str, **values: Any) -> None:
        self.items.append(
            Item(
                order, kind, values["name"], template, values, kind in ("Queue", "Job", "PodGroup")
            )
        )
