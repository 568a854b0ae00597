"""The local `xpool up` as an instance target, through its gateway's loopback admin API.

The gateway owns the routing table and the drain, so a one-shot pass only asks for changes
(launch, drain, terminate) and reads state back on the next pass; nothing here waits for a
model to load or a stream to finish.
"""

from __future__ import annotations

from typing import Any

from xpool.errors import InputError, RemoteError
from xpool.local.admin import AdminClient
from xpool.policy.actions import Drain, Launch, Terminate
from xpool.policy.state import InstanceObs


class LocalTarget:
    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin

    def close(self) -> None:
        self.admin.close()

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A refused request is a failed action, not bad input to this command: the pass
        records it and goes on with the other actions (and the next pass retries)."""
        try:
            return self.admin.call("POST" if body is not None else "GET", path, body)
        except InputError as exc:
            messages = "; ".join(problem.message for problem in exc.problems)
            raise RemoteError(f"gateway {path}: {messages}") from None

    def instances(self) -> list[InstanceObs]:
        data = self._call("/-/admin/instances")
        return [
            InstanceObs(
                uid=str(i["uid"]),
                model=str(i["model"]),
                version=str(i.get("version", "")),
                state=i.get("state", "draining" if i.get("draining") else "ready"),
                since=float(i.get("since") or 0.0),
                inflight=int(i.get("inflight", 0)),
                error=i.get("error"),
            )
            for i in data.get("instances", [])
        ]

    def launch(self, action: Launch) -> list[str]:
        body = {"model": action.model, "version": action.version, "count": action.count}
        return list(self._call("/-/admin/launch", body).get("uids", []))

    def drain(self, action: Drain) -> None:
        self._call("/-/admin/drain", {"uids": [action.uid]})

    def terminate(self, action: Terminate) -> bool:
        body = {"uids": [action.uid], "force": action.timed_out, "timedOut": action.timed_out}
        return action.uid in self._call("/-/admin/terminate", body).get("terminated", [])

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self._call("/-/admin/weights", {"model": model, "weights": weights})
