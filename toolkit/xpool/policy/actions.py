"""Actions the policy asks for, and the decisions behind them; every one carries its reason.

Actions are idempotent requests ("this UID should be draining"), so repeating a pass after a
crash, or acting on one twice, changes nothing more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Launch:
    model: str
    version: str
    count: int
    accelerators: int  # per instance
    pool: str
    tier: str
    reason: str
    # Placed: the worker (address) of the tier's worker group and its accelerators there,
    # for one instance; None when no worker is observed (Xinference places it).
    worker: str | None = None
    devices: tuple[int, ...] = ()
    kind: Literal["launch"] = "launch"


@dataclass(frozen=True)
class Drain:
    uid: str
    model: str
    tier: str
    reason: str
    reclaimed_for: str | None = None  # the tier a reclaim makes room for; None: not a reclaim
    kind: Literal["drain"] = "drain"


@dataclass(frozen=True)
class Terminate:
    uid: str
    model: str
    reason: str
    timed_out: bool = False  # drainTimeout passed with requests still in flight
    kind: Literal["terminate"] = "terminate"


@dataclass(frozen=True)
class SetQueue:
    tier: str
    pool: str
    deserved: int  # accelerators
    capability: int
    reason: str
    kind: Literal["set-queue"] = "set-queue"


@dataclass(frozen=True)
class ScaleWorkers:
    """Set a worker group's replicas (a Volcano Job task's `replicas`; local worker
    processes): more when the tier's instances need room, fewer once its highest-index
    workers hold no instance."""

    job: str
    task: str
    tier: str
    pool: str
    replicas: int
    previous: int
    reason: str
    kind: Literal["scale-workers"] = "scale-workers"


Action = Launch | Drain | Terminate | SetQueue | ScaleWorkers


@dataclass(frozen=True)
class Decision:
    """Per model and pass: what it had, what it should have, and why (also when it holds)."""

    model: str
    tier: str
    active: int  # loading + ready instances
    desired: int
    reason: str
    inputs: dict[str, Any]
    # Instances per version: wanted, less what the pool has no room for (a rollout's shift
    # waits for these), and what the versions' weights now call for (its judging does).
    versions: dict[str, int] = field(default_factory=dict)
    serving: dict[str, int] = field(default_factory=dict)


def as_dict(item: Action | Decision) -> dict[str, Any]:
    return asdict(item)
