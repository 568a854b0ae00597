"""Prometheus over its HTTP API: instant queries for the reconciler's observations.

Why a few lines of httpx and not a client library: xpool needs one endpoint (GET
/api/v1/query) plus the readiness probe, and must tell a query Prometheus refuses (400/422:
the user's PromQL is wrong, retrying cannot help) from Prometheus being away or overloaded
(connection errors, 429, 5xx: retried with a short exponential backoff, then RemoteError).

Values are floats as Prometheus computes them: NaN stays NaN (callers treat it as missing),
and +Inf/-Inf stay infinite. The bearer token is sent in a header and never printed or logged.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from xpool.errors import InputError, RemoteError

QUERY_SOURCES = (
    "queries come from policies/promql.yaml (the defaults) or the platform file's "
    "spec.prometheus.queries (overrides)"
)


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: a vector element, or the single value of a scalar."""

    labels: dict[str, str]
    value: float  # NaN when Prometheus computed NaN: treat as missing
    timestamp: float  # Unix seconds of the evaluation

    @property
    def missing(self) -> bool:
        return math.isnan(self.value)


class _Retryable(Exception):
    pass


def _error_text(response: httpx.Response) -> tuple[str, str]:
    """(errorType, error) from Prometheus' JSON error body, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return "", str(body)[:300]
    return str(body.get("errorType", "")), str(body.get("error", body))[:300]


def _verify(verify: bool | str) -> bool | ssl.SSLContext:
    """httpx 0.28 deprecates a CA bundle path as `verify`: build the context ourselves."""
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            f"CA bundle {verify} for Prometheus cannot be used ({exc}): pass a readable PEM file"
        ) from None


class PrometheusClient:
    """A small synchronous client for Prometheus' query API."""

    def __init__(
        self,
        url: str,
        *,
        bearer_token: str | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            verify=_verify(verify),
            transport=transport,
        )
        self._attempts = max(1, attempts)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self) -> bool:
        """Whether Prometheus answers /-/ready with 200 (once, no retries)."""
        try:
            return self._http.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate `expr` at `at` (Unix seconds; now when None). A vector gives one Sample
        per series, a scalar one Sample with no labels. InputError when Prometheus refuses the
        query or it yields a range vector or a string; RemoteError when Prometheus cannot be
        reached or keeps failing."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(float(at))
        data = self._get_data("/api/v1/query", params, expr)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [
                Sample(labels=dict(item["metric"]), value=float(v), timestamp=float(ts))
                for item in result
                for ts, v in [item["value"]]
            ]
        if kind == "scalar":
            ts, v = result
            return [Sample(labels={}, value=float(v), timestamp=float(ts))]
        hint = "wrap range selectors in a function such as rate()" if kind == "matrix" else ""
        raise InputError(
            f"PromQL query {expr!r} returns a {kind}, not an instant vector or scalar: "
            f"{hint or 'make it return numbers'}; {QUERY_SOURCES}"
        )

    def _get_data(self, path: str, params: dict[str, str], expr: str) -> dict[str, Any]:
        def once() -> httpx.Response:
            try:
                response = self._http.get(path, params=params)
            except httpx.TransportError as exc:
                raise _Retryable(f"cannot reach it: {type(exc).__name__}: {exc}") from None
            if response.status_code == 429 or response.status_code >= 500:
                _, error = _error_text(response)
                raise _Retryable(f"HTTP {response.status_code}: {error}")
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            response = retrying(once)
        except (_Retryable, RetryError) as exc:
            raise RemoteError(
                f"prometheus at {self.url}: query {expr!r}: {exc} (after {self._attempts} attempts)"
            ) from None
        if response.status_code in (400, 422):
            kind, error = _error_text(response)
            raise InputError(
                f"PromQL query {expr!r} refused by Prometheus ({kind or response.status_code}: "
                f"{error}); fix the query: {QUERY_SOURCES}"
            )
        if response.status_code in (401, 403):
            raise RemoteError(
                f"prometheus at {self.url} refused the query (HTTP {response.status_code}): "
                "check its bearer token"
            )
        if response.status_code >= 400:
            _, error = _error_text(response)
            raise RemoteError(f"prometheus at {self.url}: HTTP {response.status_code}: {error}")
        try:
            body = response.json()
        except ValueError:
            raise RemoteError(
                f"prometheus at {self.url} answered {path} with something other than JSON: "
                "is the URL Prometheus' own (no /graph suffix)?"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise RemoteError(f"prometheus at {self.url}: unexpected answer {str(body)[:300]}")
        return body["data"]
