"""The local `xpool up` as an instance target, through its gateway's loopback admin API.

The gateway owns the routing table and the drain, so a one-shot pass only asks for changes
(launch, drain, terminate) and reads state back on the next pass; nothing here waits for a
model to load or a stream to finish.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from xpool.errors import RemoteError
from xpool.policy.actions import Drain, Launch, Terminate
from xpool.policy.state import InstanceObs


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


class LocalTarget:
    def __init__(self, gateway: str, token: str, *, timeout: float = 30.0, attempts: int = 3):
        self.gateway = gateway.rstrip("/")
        self._http = httpx.Client(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self._attempts = attempts

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GETs and these idempotent admin POSTs are safe to repeat after a lost answer."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            ):
                with attempt:
                    response = self._http.request(method, path, json=body)
                    if response.status_code >= 500:
                        response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RemoteError(f"gateway {self.gateway}{path}: {exc}") from None
        data = response.json() if response.content else {}
        if response.status_code >= 400 and response.status_code != 409:
            message = data.get("error", {}).get("message", response.text[:300])
            raise RemoteError(f"gateway {path}: HTTP {response.status_code}: {message}")
        return data

    def instances(self) -> list[InstanceObs]:
        data = self._call("GET", "/-/admin/instances")
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
        return list(self._call("POST", "/-/admin/launch", body).get("uids", []))

    def drain(self, action: Drain) -> None:
        self._call("POST", "/-/admin/drain", {"uids": [action.uid]})

    def terminate(self, action: Terminate) -> bool:
        body = {"uids": [action.uid], "force": action.timed_out, "timedOut": action.timed_out}
        return action.uid in self._call("POST", "/-/admin/terminate", body).get("terminated", [])

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self._call("POST", "/-/admin/weights", {"model": model, "weights": weights})
