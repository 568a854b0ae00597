"""Where instances run and requests are routed: the local `xpool up` or a Kubernetes platform.

The reconciler sees one interface for both, so its passes (observe -> decide -> act) are the
same code; only what a pass reads and writes differs.
"""

from __future__ import annotations

from typing import Protocol

from xpool.policy.actions import Drain, Launch, ScaleWorkers, Terminate
from xpool.policy.state import InstanceObs, WorkerObs


class InstanceTarget(Protocol):
    def instances(self) -> list[InstanceObs]:
        """Every instance (loading, ready, draining, failed) with its in-flight requests
        summed over all gateways; `since` in unix seconds. Raises RemoteError."""
        ...

    def workers(self) -> list[WorkerObs]:
        """The workers instances may be placed on, each with its tier, pool, node and
        accelerators; [] when none are known (launches then name no worker)."""
        ...

    def worker_replicas(self) -> dict[tuple[str, str], int]:
        """Each worker group's replicas now, by (job, task); {} when the groups cannot be
        scaled from here (the policy then leaves them alone). Raises RemoteError."""
        ...

    def scale_workers(self, action: ScaleWorkers) -> bool:
        """Set the group's replicas; False when it cannot happen yet (locally: no node has
        room for another worker), retried next pass. Idempotent. Raises RemoteError."""
        ...

    def launch(self, action: Launch) -> list[str]:
        """Start `action.count` instances without waiting for them; returns their UIDs.
        They show as `loading` until ready, then `ready` (routed)."""
        ...

    def drain(self, action: Drain) -> None:
        """Stop routing new requests to `action.uid` (every gateway); idempotent."""
        ...

    def terminate(self, action: Terminate) -> bool:
        """Stop the instance and forget it when no gateway has a request in flight on it (or
        `action.timed_out`); False when it is still busy (left alone, retried next pass)."""
        ...

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        """Route `model`'s requests across its versions by `weights` (every gateway)."""
        ...
