"""Client of the running `xpool up` gateway's loopback admin API (`/-/admin/...`).

One place for the chain every local command needs: the up-state file -> the admin token ->
an authenticated HTTP call. GETs and the admin POSTs are idempotent (launching names the
UIDs, draining or terminating one twice is a no-op), so transport errors and 5xx are retried;
4xx are the caller's input and are never retried.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from xpool.errors import InputError, Problem, RemoteError
from xpool.local.up_state import UpState


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


class AdminClient:
    def __init__(
        self, gateway: str, token: str, *, timeout: float = 30.0, attempts: int = 3
    ) -> None:
        self.gateway = gateway.rstrip("/")
        self._http = httpx.Client(
            base_url=self.gateway,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self._attempts = attempts

    @classmethod
    def of(cls, up: UpState, *, timeout: float = 30.0, attempts: int = 3) -> AdminClient:
        return cls(up.gateway, up.admin_token(), timeout=timeout, attempts=attempts)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        conflict_ok: bool = True,
    ) -> dict[str, Any]:
        """The JSON answer. 400/404/422 -> InputError (the request was wrong); other 4xx
        (but 409 when `conflict_ok`) and 5xx after retries -> RemoteError."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_transient),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            ):
                with attempt:
                    response = self._http.request(
                        method, path, json=body, timeout=timeout or httpx.USE_CLIENT_DEFAULT
                    )
                    if response.status_code >= 500:
                        response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RemoteError(f"gateway {self.gateway}{path}: {exc}") from None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {"error": {"message": response.text[:300]}}
        status = response.status_code
        message = (data.get("error") or {}).get("message", response.text[:300])
        if status in (400, 404, 422):
            raise InputError([Problem("request", path, message)])
        if status >= 400 and not (status == 409 and conflict_ok):
            raise RemoteError(f"gateway {path}: HTTP {status}: {message}")
        return data

    def instances(self) -> list[dict[str, Any]]:
        """One row per instance the gateway knows: uid, model, version, state, inflight, ..."""
        return list(self.call("GET", "/-/admin/instances").get("instances", []))


def running_instances(up: UpState | None) -> tuple[str | None, list[dict[str, Any]]]:
    """(gateway URL, its instances) of a running `xpool up`, or (None, []) when none answers:
    read-only views show what they can without it."""
    if up is None:
        return None, []
    try:
        with AdminClient.of(up, timeout=5, attempts=1) as admin:
            return admin.gateway, admin.instances()
    except (RemoteError, InputError, KeyError, TypeError, ValueError):
        return None, []
