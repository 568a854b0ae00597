"""Map field paths in a YAML document to FILE:LINE:COL, so every error points at its source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

PathElem = str | int


def format_path(path: Sequence[PathElem]) -> str:
    """("spec", "models", 0, "tier") -> "spec.models[0].tier"; an empty key is `[""]`."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif elem == "":
            out += '[""]'
        else:
            out += f".{elem}" if out else str(elem)
    return out


@dataclass(frozen=True)
class SourceMap:
    """One file's text, and its ruamel.yaml round-trip tree parsed only when first needed
    (to locate a problem): that parse is the slow part of loading a large file."""

    filename: str
    text: str
    parse: Callable[[str, str], Any]

    @cached_property
    def root(self) -> Any:
        return self.parse(self.filename, self.text)

    def locate(self, path: Sequence[PathElem]) -> str:
        line, col = self._line_col(path)
        return f"{self.filename}:{line + 1}:{col + 1}"

    def _line_col(self, path: Sequence[PathElem]) -> tuple[int, int]:
        node = self.root
        best = (0, 0)
        for elem in path:
            lc = getattr(node, "lc", None)
            if lc is None:
                break
            try:
                if isinstance(elem, int) and isinstance(node, list) and elem < len(node):
                    best = lc.item(elem)
                    node = node[elem]
                elif isinstance(node, dict) and elem in node:
                    # Point at a scalar value, else at the key (an empty value's mark
                    # is already on the next line).
                    line, col = lc.key(elem)
                    vline, vcol = lc.value(elem)
                    value = node[elem]
                    scalar = value is not None and not isinstance(value, dict | list)
                    best = (vline, vcol) if scalar else (line, col)
                    node = value
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
        return best
