"""The OpenAI-compatible gateway (Starlette + httpx).

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

`/metrics` serves the app's own Prometheus registry; `/-/admin/*` (loopback clients with the
admin token only) drives an `Admin` controller: instance lifecycle in non-blocking steps
(launch, drain, terminate, and the instances' states to observe), a blocking scale, canary
weights. Errors are `{"error": {...}}` with 400/404/409/422, or 502 when Xinference failed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from xpool.errors import RemoteError
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.routing import Lease, Refusal, RoutingTable

FORWARDED = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank")
PASSED_HEADERS = ("content-type", "cache-control", "x-request-id")
RETRYABLE_TRANSPORT = (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
ATTEMPTS = 3  # upstream attempts per request, all before any byte reached the client
HEAD_LIMIT = 65_536  # stream bytes held back at most while waiting for the first data event
JSON_CONTENT = {"content-type": "application/json"}
SSE_LINE = re.compile(rb"\r\n|\r|\n")


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Admin(Protocol):
    """What the admin endpoint drives (calls that may block run in a worker thread; only
    `scale` waits for loads and drains)."""

    def instances(self) -> list[dict[str, Any]]: ...

    def launch(
        self, model: str, version: str | None, count: int | None, uids: list[str] | None
    ) -> dict[str, Any]: ...

    def drain(self, uids: list[str]) -> dict[str, Any]: ...

    def terminate(self, uids: list[str], *, force: bool, timed_out: bool) -> dict[str, Any]: ...

    def scale(
        self, model: str, instances: int, *, force: bool, version: str | None
    ) -> dict[str, Any]: ...

    def set_weights(self, model: str, weights: dict[str, float]) -> dict[str, Any]: ...


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise AdminError(400, f"{name}: must be true or false, not {value!r}")
    return value


def _uids(payload: dict[str, Any]) -> list[str]:
    uids = payload.get("uids")
    if not isinstance(uids, list) or not uids or not all(isinstance(u, str) and u for u in uids):
        raise AdminError(400, "uids: give a non-empty list of instance UIDs")
    return uids


def _count(payload: dict[str, Any]) -> int | None:
    count = payload.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise AdminError(400, f"count: must be a whole number, not {count!r}")
    return count


def error(status: int, message: str, kind: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status_code=status)


def _is_gone(status: int, content: bytes) -> bool:
    """Xinference's answer for a UID it no longer runs (terminated behind our back)."""
    return status in (400, 404) and b"model not found" in content.lower()


def first_event_data(buffer: bytes) -> bytes | None:
    """The data of the first complete SSE event that has a `data` field (comments such as
    pings skipped), or None while `buffer` holds no such event yet."""
    data: list[bytes] = []
    for line in SSE_LINE.split(buffer)[:-1]:
        if not line:
            if data:
                return b"\n".join(data)
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
    return None


def is_error_event(data: bytes) -> bool:
    """Xinference's failed stream: HTTP 200, then `data: {"error": "..."}` as the event."""
    if b'"error"' not in data:
        return False
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and "error" in payload


async def _head(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """The stream's bytes up to its first data event, and whether that event is an error."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        data = first_event_data(buffer)
        if data is not None:
            return buffer, is_error_event(data)
        if len(buffer) > HEAD_LIMIT:
            break
    return buffer, False


def _lines(buffer: bytes) -> tuple[bytes, bytes]:
    """Complete lines, and the incomplete rest."""
    cut = buffer.rfind(b"\n") + 1
    return buffer[:cut], buffer[cut:]


@dataclass(frozen=True)
class _Failed:
    """An attempt that failed before any byte reached the client (its lease released)."""

    lease: Lease
    code: str  # its upstream outcome, as counted
    response: Response  # what the client gets if no retry succeeds


class _Rewriter:
    """Puts the public model name back into Xinference's JSON (`"model": "<uid>"`)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[re.Pattern[bytes], bytes]] = {}

    def __call__(self, data: bytes, uid: str, public: str) -> bytes:
        entry = self._cache.get((uid, public))
        if entry is None:
            pattern = re.compile(rb'("model"\s*:\s*")' + re.escape(uid.encode()) + rb'"')
            entry = (pattern, b"\\g<1>" + public.encode().replace(b"\\", b"\\\\") + b'"')
            self._cache[(uid, public)] = entry
        return entry[0].sub(entry[1], data)


def create_app(
    table: RoutingTable,
    upstream: str,
    *,
    api_key: str | None = None,
    timeout: float = 600.0,
    max_connections: int = 256,
    client_id_header: str = "X-Client-Id",
    retry_after: int = 1,
    metrics: GatewayMetrics | None = None,
    admin: Admin | None = None,
    admin_token: str | None = None,
) -> Starlette:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    state: dict[str, httpx.AsyncClient] = {}
    metrics = metrics or GatewayMetrics(table)
    rewrite = _Rewriter()
    client_header = client_id_header.lower()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        async with httpx.AsyncClient(
            base_url=upstream.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
        ) as client:
            state["client"] = client
            yield

    async def models(_: Request) -> Response:
        data = [
            {
                "id": r.model,
                "object": "model",
                "owned_by": "xpool",
                "model_type": r.model_type,
                "tier": r.tier,
                "instances": len(r.uids),
            }
            for r in table.routes()
            if r.uids
        ]
        return JSONResponse({"object": "list", "data": data})

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def refused(name: str, refusal: Refusal) -> JSONResponse:
        metrics.requests.labels(name, "", refusal.tier, str(refusal.status)).inc()
        if refusal.status == 429:
            metrics.shed.labels(name, refusal.tier, refusal.reason).inc()
            response = error(
                429,
                refusal.message,
                "overloaded",
                tier=refusal.tier,
                reason=refusal.reason,
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        return error(
            refusal.status, refusal.message, "not_found" if refusal.status == 404 else "unavailable"
        )

    def count(lease: Lease, code: str) -> None:
        metrics.upstream.labels(lease.model, lease.version, code).inc()

    async def forward(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "the request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error(400, "the request needs a 'model' field", "invalid_request_error")
        name = body["model"]
        client_id = request.headers.get(client_header)
        tried: list[str] = []
        failed: _Failed | None = None
        for _attempt in range(ATTEMPTS):
            lease = table.acquire(
                name,
                client_id=client_id,
                exclude=tried,
                avoid_version=failed.lease.version if failed else None,
            )
            if isinstance(lease, Refusal):
                if failed is None:
                    return refused(name, lease)
                break
            if failed is not None:
                metrics.retries.labels(name, failed.code).inc()
            tried.append(lease.uid)
            body["model"] = lease.uid
            outcome = await attempt(request.url.path, json.dumps(body).encode(), lease, started)
            if not isinstance(outcome, _Failed):
                return outcome
            failed = outcome
        assert failed is not None
        return _finish(failed.lease, started, failed.response)

    async def attempt(
        path: str, content: bytes, lease: Lease, started: float
    ) -> Response | _Failed:
        """One upstream try: the client's response, or a failure before any byte was sent."""
        client: httpx.AsyncClient = state["client"]
        name = lease.model
        response: httpx.Response | None = None
        handed = False  # a stream going on owns the response and the lease
        try:
            response = await client.send(
                client.build_request("POST", path, content=content, headers=JSON_CONTENT),
                stream=True,
            )
            status = response.status_code
            if status < 400 and response.headers.get("content-type", "").startswith(
                "text/event-stream"
            ):
                chunks = response.aiter_bytes()
                head, broken = await _head(chunks)
                passed = _passed(response, lease)
                if not broken:
                    handed = True
                    return StreamingResponse(
                        _stream(response, chunks, head, lease, started), status, headers=passed
                    )
                code = "stream_error"
                answer = Response(rewrite(head, lease.uid, name), status, headers=passed)
            else:
                data = await response.aread()
                code = str(status)
                if status < 500 and not _is_gone(status, data):
                    count(lease, code)
                    metrics.ttft.labels(name, lease.version, lease.tier).observe(
                        time.perf_counter() - started
                    )
                    out = rewrite(data, lease.uid, name)
                    return _finish(lease, started, Response(out, status, _passed(response, lease)))
                answer = Response(data, status, headers=_passed(response, lease))
        except RETRYABLE_TRANSPORT as exc:
            code = "transport"
            answer = error(502, f"instance {lease.uid} unreachable: {exc}", "upstream_error")
        except httpx.TimeoutException:
            count(lease, "timeout")
            return _finish(lease, started, error(504, f"instance {lease.uid} timed out", "timeout"))
        finally:
            if not handed:
                table.release(lease)
                if response is not None:
                    await response.aclose()
        count(lease, code)
        return _Failed(lease, code, answer)

    def _passed(response: httpx.Response, lease: Lease) -> dict[str, str]:
        passed = {k: v for k, v in response.headers.items() if k.lower() in PASSED_HEADERS}
        passed["x-xpool-instance"] = lease.uid
        passed["x-xpool-version"] = lease.version
        return passed

    def _finish(lease: Lease, started: float, response: Response) -> Response:
        labels = (lease.model, lease.version, lease.tier)
        metrics.requests.labels(*labels, str(response.status_code)).inc()
        metrics.duration.labels(*labels).observe(time.perf_counter() - started)
        return response

    async def _stream(
        response: httpx.Response,
        chunks: AsyncIterator[bytes],
        head: bytes,
        lease: Lease,
        started: float,
    ) -> AsyncIterator[bytes]:
        """Pass the SSE stream on from its inspected head, complete lines at a time with
        `model` rewritten; release the lease only after the last byte (or when the client went
        away). An upstream that breaks now leaves the client a truncated stream."""
        labels = (lease.model, lease.version, lease.tier)
        uid, name = lease.uid, lease.model
        code = upstream_code = str(response.status_code)
        out, buffer = _lines(head)
        try:
            metrics.ttft.labels(*labels).observe(time.perf_counter() - started)
            if out:
                yield rewrite(out, uid, name)
            async for chunk in chunks:
                out, buffer = _lines(buffer + chunk)
                if out:
                    yield rewrite(out, uid, name)
            if buffer:
                yield rewrite(buffer, uid, name)
        except httpx.HTTPError:
            code, upstream_code = "502", "stream_broken"
            raise
        finally:
            table.release(lease)
            with anyio.CancelScope(shield=True):
                await response.aclose()
            count(lease, upstream_code)
            metrics.requests.labels(*labels, code).inc()
            metrics.duration.labels(*labels).observe(time.perf_counter() - started)

    # -- admin -------------------------------------------------------------------------------

    def authorized(request: Request) -> Response | None:
        if admin is None or not admin_token:
            return error(404, "the admin endpoint is not enabled", "not_found")
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return error(403, "the admin endpoint answers loopback clients only", "forbidden")
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            return error(401, "missing or wrong admin token", "unauthorized")
        return None

    async def admin_call(request: Request, call: Any, status: int = 200) -> Response:
        denied = authorized(request)
        if denied is not None:
            return denied
        try:
            payload = json.loads(await request.body())
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            return error(400, "the request body must be a JSON object", "invalid_request_error")
        try:
            result = await anyio.to_thread.run_sync(call, payload)
        except AdminError as exc:
            return error(exc.status, str(exc), "admin_error")
        except RemoteError as exc:
            return error(502, str(exc), "upstream_error")
        except (KeyError, TypeError, ValueError) as exc:
            return error(400, f"bad admin request: {exc}", "invalid_request_error")
        return JSONResponse(result, status_code=status)

    async def admin_scale(request: Request) -> Response:
        def call(p: dict[str, Any]) -> dict[str, Any]:
            assert admin is not None
            return admin.scale(
                str(p["model"]),
                int(p["instances"]),
                force=_flag(p, "force"),
                version=p.get("version"),
            )

        return await admin_call(request, call)

    async def admin_launch(request: Request) -> Response:
        def call(p: dict[str, Any]) -> dict[str, Any]:
            assert admin is not None
            uids = _uids(p) if "uids" in p else None
            version = None if p.get("version") is None else str(p["version"])
            return admin.launch(str(p["model"]), version, _count(p), uids)

        return await admin_call(request, call, status=202)

    async def admin_drain(request: Request) -> Response:
        def call(p: dict[str, Any]) -> dict[str, Any]:
            assert admin is not None
            return admin.drain(_uids(p))

        return await admin_call(request, call)

    async def admin_terminate(request: Request) -> Response:
        def call(p: dict[str, Any]) -> dict[str, Any]:
            assert admin is not None
            return admin.terminate(
                _uids(p), force=_flag(p, "force"), timed_out=_flag(p, "timedOut")
            )

        return await admin_call(request, call)

    async def admin_weights(request: Request) -> Response:
        def call(p: dict[str, Any]) -> dict[str, Any]:
            assert admin is not None
            weights = {str(k): float(v) for k, v in dict(p["weights"]).items()}
            return admin.set_weights(str(p["model"]), weights)

        return await admin_call(request, call)

    async def admin_instances(request: Request) -> Response:
        denied = authorized(request)
        if denied is not None:
            return denied
        assert admin is not None
        return JSONResponse(
            {
                "instances": admin.instances(),
                "weights": {r.model: table.weights(r.model) for r in table.routes()},
                "now": time.time(),
            }
        )

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/-/admin/scale", admin_scale, methods=["POST"]),
        Route("/-/admin/weights", admin_weights, methods=["POST"]),
        Route("/-/admin/instances", admin_instances, methods=["GET"]),
        Route("/-/admin/launch", admin_launch, methods=["POST"]),
        Route("/-/admin/drain", admin_drain, methods=["POST"]),
        Route("/-/admin/terminate", admin_terminate, methods=["POST"]),
    ]
    routes += [Route(path, forward, methods=["POST"]) for path in FORWARDED]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.table = table
    return app
