"""The gateway's request path: OpenAI-compatible requests forwarded to Xinference instances.

Requests name a public model (`"model": "chat"`). The routing table admits the request
(priority admission, per-instance request limits: 429 with Retry-After and a JSON reason
otherwise), picks the version (canary weights, sticky per `X-Client-Id`) and the instance
(least outstanding requests among ready, non-draining ones). The body goes to Xinference with
`model` set to that instance's UID; the answer comes back with `model` set to the public name
again, SSE streams passed through line by line and always run to their end.

A failure before any byte reached the client is retried, up to three attempts, on another
instance and preferably another version: a transport error, any 5xx, Xinference's "model not
found" for an instance gone, and a stream whose first event is Xinference's error event (it
fails streams with a 200 and `data: {"error": ...}`, so a stream is held back until its first
data event). Inference requests have no side effects, so a retry cannot do anything twice; 4xx
answers and timeouts are never retried. Every attempt is counted per version
(`xpool_gateway_upstream_responses_total`): the canary gate's error rate. The Xinference API key
comes from configuration only: client Authorization headers are never forwarded, and the key is
never logged.

Before any of that: with client API keys configured, `/v1/*` needs one as a bearer token (401);
the body is read within spec.gateway's size and nesting limits (413, 400; `gateway/limits.py`).
Prompt and completion tokens are counted from the answers' `usage` (streams: the gateway asks
for it and drops the chunk it asked for; `gateway/usage.py`). Metric labels carry only names
the routing table knows: a model it does not know is counted
as `(unknown)`, so clients cannot create series.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from xpool.gateway.auth import Tokens, unauthorized
from xpool.gateway.limits import DEFAULT_LIMITS, RequestLimits, read_json
from xpool.gateway.metrics import UNKNOWN_MODEL, GatewayMetrics
from xpool.gateway.responses import error
from xpool.gateway.routing import Lease, Refusal, RoutingTable, Ticket
from xpool.gateway.sse import Rewriter, read_head, split_lines
from xpool.gateway.usage import StreamUsage, Usage, ask_usage, read_usage

FORWARDED = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank")
PASSED_HEADERS = ("content-type", "cache-control", "x-request-id")
RETRYABLE_TRANSPORT = (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
ATTEMPTS = 3  # upstream attempts per request, all before any byte reached the client
CONNECT_TIMEOUT = 10.0
JSON_CONTENT = {"content-type": "application/json"}


@dataclass(frozen=True)
class _Failed:
    """An attempt that failed before any byte reached the client (its lease released)."""

    lease: Lease
    code: str  # its upstream outcome, as counted
    response: Response  # what the client gets if no retry succeeds


def is_gone(status: int, content: bytes) -> bool:
    """Xinference's answer for a UID it no longer runs (terminated behind our back)."""
    return status in (400, 404) and b"model not found" in content.lower()


def _names_a_model(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("model"), str)


class Proxy:
    """The routing table, the pooled upstream client (opened by `lifespan`), the metrics, the
    timeouts and the retry policy; `forward` is the endpoint of every forwarded path."""

    def __init__(
        self,
        table: RoutingTable,
        upstream: str,
        metrics: GatewayMetrics,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        max_connections: int = 256,
        client_id_header: str = "X-Client-Id",
        retry_after: int = 1,
        limits: RequestLimits = DEFAULT_LIMITS,
        client_keys: Tokens | None = None,
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.upstream = upstream.rstrip("/")
        self.timeout = timeout
        self.max_connections = max_connections
        self.retry_after = str(retry_after)
        self.limits = limits
        self._client_keys = client_keys
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client_header = client_id_header.lower()
        self._rewrite = Rewriter()
        self._client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """The app's lifespan: one pooled upstream client while it serves."""
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        async with httpx.AsyncClient(
            base_url=self.upstream,
            headers=self._headers,
            timeout=httpx.Timeout(self.timeout, connect=CONNECT_TIMEOUT),
            limits=limits,
        ) as client:
            self._client = client
            yield

    # -- read endpoints ----------------------------------------------------------------------

    def denied(self, request: Request) -> Response | None:
        """401 when client API keys are configured and `request` carries none of them."""
        if self._client_keys is None or self._client_keys.accept(request):
            return None
        return unauthorized(
            "missing or wrong API key: send it as 'Authorization: Bearer <key>'",
            "invalid_request_error",
            code="invalid_api_key",
        )

    async def models(self, request: Request) -> Response:
        """`GET /v1/models`: public models with instances, their tier and instance count."""
        denied = self.denied(request)
        if denied is not None:
            return denied
        data = [
            {
                "id": r.model,
                "object": "model",
                "owned_by": "xpool",
                "model_type": r.model_type,
                "tier": r.tier,
                "instances": len(r.uids),
            }
            for r in self.table.routes()
            if r.uids
        ]
        return JSONResponse({"object": "list", "data": data})

    async def metrics_page(self, _: Request) -> Response:
        """`GET /metrics`: the app's own Prometheus registry."""
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- the request path --------------------------------------------------------------------

    async def forward(self, request: Request) -> Response:
        """Admit the request, send it to an instance, and retry a failure before the first
        byte on an instance not tried yet; when every attempt failed, the last failure."""
        started = time.perf_counter()
        denied = self.denied(request)
        if denied is not None:
            return denied
        body = await read_json(request, self.limits)
        if isinstance(body, Response):
            return body
        if not _names_a_model(body):
            return error(400, "the request needs a 'model' field", "invalid_request_error")
        client_id = request.headers.get(self._client_header)  # sticky canary pick
        outcome = await self.send(request.url.path, body, started, client_id=client_id)
        return self.refused(body["model"], outcome) if isinstance(outcome, Refusal) else outcome

    async def send(
        self,
        path: str,
        body: dict[str, Any],
        started: float,
        *,
        client_id: str | None = None,
        ticket: Ticket | None = None,
    ) -> Response | Refusal:
        """Send `body` (naming a public model) to an instance, retrying a failure before the
        first byte on an instance not tried yet: the answer, the last failure when every
        attempt failed, or the table's refusal when none was admitted. Interactive requests
        and the Batch API's runner (`ticket`: a batch request) share this path."""
        name = body["model"]
        strip = ask_usage(path, body)  # streams report their tokens (gateway/usage.py)
        tried: list[str] = []
        failed: _Failed | None = None
        for _attempt in range(ATTEMPTS):
            lease = self._choose(name, client_id, tried, failed, ticket)
            if isinstance(lease, Refusal):
                if failed is None:
                    return lease
                break
            if failed is not None:
                self.metrics.retries.labels(failed.lease.model, failed.code).inc()
            tried.append(lease.uid)
            body["model"] = lease.uid
            outcome = await self._attempt(path, json.dumps(body).encode(), lease, started, strip)
            if not isinstance(outcome, _Failed):
                return outcome
            failed = outcome
        assert failed is not None
        return self._finish(failed.lease, started, failed.response)

    def _choose(
        self,
        name: str,
        client_id: str | None,
        tried: list[str],
        failed: _Failed | None,
        ticket: Ticket | None,
    ) -> Lease | Refusal:
        """Admission, version (canary weights, sticky per client) and least-loaded instance:
        one not tried yet, on another version than the failed one while one may serve."""
        return self.table.acquire(
            name,
            client_id=client_id,
            exclude=tried,
            avoid_version=failed.lease.version if failed else None,
            ticket=ticket,
        )

    def refused(self, name: str, refusal: Refusal) -> JSONResponse:
        """A request the table did not admit: 429 with Retry-After when shed (priority
        admission, request limits) or when no instance is ready, else 404 (unknown model) or
        503."""
        label = UNKNOWN_MODEL if refusal.reason == "unknown_model" else name
        self.metrics.requests.labels(label, "", refusal.tier, str(refusal.status)).inc()
        if refusal.status == 429:
            self.metrics.shed.labels(label, refusal.tier, refusal.reason).inc()
            response = error(
                429,
                refusal.message,
                "unavailable" if refusal.reason == "no_instance" else "overloaded",
                tier=refusal.tier,
                reason=refusal.reason,
            )
            response.headers["Retry-After"] = self.retry_after
            return response
        return error(
            refusal.status, refusal.message, "not_found" if refusal.status == 404 else "unavailable"
        )

    async def _attempt(
        self, path: str, content: bytes, lease: Lease, started: float, strip: bool
    ) -> Response | _Failed:
        """One upstream try: the client's response, or a failure before any byte was sent.
        A transport error is a failure (retried); a timeout is the client's 504. `strip`: drop
        the usage-only chunk the gateway asked for."""
        client = self._client
        assert client is not None, "the app's lifespan opens the upstream client"
        response: httpx.Response | None = None
        handed = False  # a stream going on owns the response and the lease
        try:
            response = await client.send(
                client.build_request("POST", path, content=content, headers=JSON_CONTENT),
                stream=True,
            )
            if response.status_code < 400 and response.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                chunks = response.aiter_bytes()
                head, broken = await read_head(chunks)
                outcome = self._stream(response, chunks, head, broken, lease, started, strip)
                handed = not broken
            else:
                outcome = self._answer(response, await response.aread(), lease, started)
        except RETRYABLE_TRANSPORT as exc:
            message = f"instance {lease.uid} unreachable: {exc}"
            outcome = self._failed(lease, "transport", error(502, message, "upstream_error"))
        except httpx.TimeoutException:
            self._count(lease, "timeout")
            outcome = self._finish(
                lease, started, error(504, f"instance {lease.uid} timed out", "timeout")
            )
        finally:
            if not handed:
                self.table.release(lease)
                if response is not None:
                    await response.aclose()
        return outcome

    def _first_byte(self, lease: Lease, status: int, seconds: float) -> None:
        """TTFT for dashboards; for the canary gate too when the attempt succeeded on a warm
        instance (a 4xx says nothing about the version's speed)."""
        self.metrics.ttft.labels(lease.model, lease.version, lease.tier).observe(seconds)
        if lease.warm and status < 400:
            self.metrics.gate_ttft.labels(lease.model, lease.version).observe(seconds)

    def _answer(
        self, response: httpx.Response, data: bytes, lease: Lease, started: float
    ) -> Response | _Failed:
        """A whole (non-stream) answer: passed on with the public name, or a failure when
        5xx or Xinference no longer runs the instance."""
        status = response.status_code
        code = str(status)
        if status < 500 and not is_gone(status, data):
            self._count(lease, code)
            self._first_byte(lease, status, time.perf_counter() - started)
            if status < 300:
                self._tokens(lease, read_usage(data))
            out = self._rewrite(data, lease.uid, lease.model)
            return self._finish(
                lease, started, Response(out, status, self._passed(response, lease))
            )
        answer = Response(data, status, headers=self._passed(response, lease))
        return self._failed(lease, code, answer)

    def _stream(
        self,
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        head: bytes,
        broken: bool,
        lease: Lease,
        started: float,
        strip: bool,
    ) -> Response | _Failed:
        """An SSE answer, held back until its first data event (`head`): a failure when that
        event is Xinference's error (`broken`), else the client's stream, which then owns the
        response and the lease."""
        status = response.status_code
        passed = self._passed(response, lease)
        if broken:
            out = self._rewrite(head, lease.uid, lease.model)
            return self._failed(lease, "stream_error", Response(out, status, headers=passed))
        relay = self._relay(response, chunks, head, lease, started, StreamUsage(strip))
        return StreamingResponse(relay, status, headers=passed)

    async def _relay(
        self,
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        head: bytes,
        lease: Lease,
        started: float,
        tap: StreamUsage,
    ) -> AsyncIterator[bytes]:
        """Pass the SSE stream on from its inspected head, complete lines at a time with
        `model` rewritten and usage read (`tap`); release the lease only after the last byte
        (or when the client went away). An upstream that breaks now leaves the client a
        truncated stream, and its tokens uncounted (no usage came)."""
        metrics, rewrite = self.metrics, self._rewrite
        labels = (lease.model, lease.version, lease.tier)
        uid, name = lease.uid, lease.model
        code = upstream_code = str(response.status_code)
        out, buffer = split_lines(head)
        try:
            self._first_byte(lease, response.status_code, time.perf_counter() - started)
            if out := tap.feed(out):
                yield rewrite(out, uid, name)
            async for chunk in chunks:
                out, buffer = split_lines(buffer + chunk)
                if out := tap.feed(out):
                    yield rewrite(out, uid, name)
            if buffer := tap.feed(buffer):
                yield rewrite(buffer, uid, name)
        except httpx.HTTPError:
            code, upstream_code = "502", "stream_broken"
            raise
        finally:
            self.table.release(lease)
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self._count(lease, upstream_code)
            self._tokens(lease, tap.usage)
            metrics.requests.labels(*labels, code).inc()
            metrics.duration.labels(*labels).observe(time.perf_counter() - started)

    # -- accounting --------------------------------------------------------------------------

    def _failed(self, lease: Lease, code: str, answer: Response) -> _Failed:
        """A failed attempt, counted by its upstream outcome."""
        self._count(lease, code)
        return _Failed(lease, code, answer)

    def _count(self, lease: Lease, code: str) -> None:
        self.metrics.upstream.labels(lease.model, lease.version, code).inc()

    def _tokens(self, lease: Lease, usage: Usage | None) -> None:
        if usage is not None:
            labels = (lease.model, lease.version, lease.tier)
            self.metrics.prompt_tokens.labels(*labels).inc(usage.prompt)
            self.metrics.completion_tokens.labels(*labels).inc(usage.completion)

    def _finish(self, lease: Lease, started: float, response: Response) -> Response:
        labels = (lease.model, lease.version, lease.tier)
        self.metrics.requests.labels(*labels, str(response.status_code)).inc()
        self.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
        return response

    def _passed(self, response: httpx.Response, lease: Lease) -> dict[str, str]:
        passed = {k: v for k, v in response.headers.items() if k.lower() in PASSED_HEADERS}
        passed["x-xpool-instance"] = lease.uid
        passed["x-xpool-version"] = lease.version
        return passed
