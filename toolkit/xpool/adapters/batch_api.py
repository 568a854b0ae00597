"""Client of the gateway's OpenAI-compatible Batch API (`/v1/files`, `/v1/batches`).

Reads and cancels are idempotent, so transport errors, 429 and 5xx are retried; an upload or
a batch creation is retried only when the connection failed before anything was sent (a
second attempt after a lost answer could create the batch twice). 4xx answers are the
caller's input (exit 2) and carry the gateway's own message; anything else left after the
retries is a remote failure (exit 3). The API key goes in a header only, never in a message.
"""

from __future__ import annotations

from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from xpool.errors import InputError, Problem, RemoteError

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class _Retry(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or response.text[:300])
    except (ValueError, AttributeError):
        return response.text[:300]


class BatchApi:
    def __init__(
        self,
        gateway: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        attempts: int = 4,
        verify: bool | str = True,
    ) -> None:
        self.gateway = gateway.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.gateway, headers=headers, timeout=timeout, verify=verify
        )
        self._attempts = attempts

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BatchApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        def retried(exc: BaseException) -> bool:
            if isinstance(exc, httpx.ConnectError):
                return True  # nothing was sent
            return idempotent and isinstance(exc, (httpx.TransportError, _Retry))

        try:
            for attempt in Retrying(
                retry=retry_if_exception(retried),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.5, max=8),
                reraise=True,
            ):
                with attempt:
                    response = self._http.request(method, path, **kwargs)
                    if idempotent and response.status_code in RETRIED_STATUS:
                        raise _Retry(response)
        except _Retry as exc:
            response = exc.response
        except httpx.HTTPError as exc:
            raise RemoteError(f"gateway {self.gateway}{path}: {exc}") from None
        status = response.status_code
        if status in (400, 401, 403, 404, 409, 413, 422):
            raise InputError(
                [Problem(f"{self.gateway}{path}", "", f"HTTP {status}: {_message(response)}")]
            )
        if status >= 400:
            raise RemoteError(f"gateway {self.gateway}{path}: HTTP {status}: {_message(response)}")
        return response

    def _json(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> dict[str, Any]:
        response = self._call(method, path, idempotent=idempotent, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise RemoteError(f"gateway {self.gateway}{path}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise RemoteError(f"gateway {self.gateway}{path}: the answer is not a JSON object")
        return data

    def upload(self, filename: str, content: bytes) -> dict[str, Any]:
        """The file object of `content` uploaded with purpose "batch"."""
        files = {"file": (filename, content, "application/jsonl")}
        return self._json(
            "POST", "/v1/files", idempotent=False, data={"purpose": "batch"}, files=files
        )

    def create(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> dict[str, Any]:
        body = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": metadata or None,
        }
        return self._json("POST", "/v1/batches", idempotent=False, json=body)

    def get(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/batches/{batch_id}", idempotent=True)

    def page(self, limit: int, after: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return self._json("GET", "/v1/batches", idempotent=True, params=params)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancelling twice is harmless, so the call is retried like a read."""
        return self._json("POST", f"/v1/batches/{batch_id}/cancel", idempotent=True)

    def content(self, file_id: str) -> bytes:
        return self._call("GET", f"/v1/files/{file_id}/content", idempotent=True).content
