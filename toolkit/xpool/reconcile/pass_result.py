"""What one reconciler pass did: its own module, so that the metrics that record it and the
reconciler that produces it do not import each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xpool.policy.actions import Decision


@dataclass
class PassResult:
    started: float
    seconds: float = 0.0
    decisions: tuple[Decision, ...] = ()
    done: list[dict[str, Any]] = field(default_factory=list)  # audit records of actions taken
    waiting: list[str] = field(default_factory=list)  # terminations, worker scales: later
    errors: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.done and not self.waiting and not self.errors
