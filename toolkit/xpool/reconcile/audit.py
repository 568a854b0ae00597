"""The audit log: one JSON line per action the reconciler took, with its reason, the inputs
it decided from, and the state before and after. Appended and flushed per line, so a crash
loses at most the line being written; it never holds secrets (no URLs with credentials, no
tokens)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO


class AuditLog:
    def __init__(self, path: Path | None, *, stream: TextIO | None = None) -> None:
        self.path = path
        self.stream = stream  # used when there is no path, e.g. stderr in a pod
        self._file: TextIO | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            if self.stream is not None:
                self.stream.write(json.dumps(record, sort_keys=True, default=str) + "\n")
                self.stream.flush()
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._file.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_audit(path: Path, last: int = 10) -> list[dict[str, Any]]:
    """The last `last` records (for `xpool status`); unreadable lines are skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[-last:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
