"""The OpenAI-compatible gateway (Starlette + httpx).

Requests name a public model (`"model": "chat"`). The routing table admits the request
(priority admission, per-instance request limits: 429 with Retry-After and a JSON reason
otherwise), picks the version (canary weights, sticky per `X-Client-Id`) and the instance
(least outstanding requests among ready, non-draining ones). The body goes to Xinference with
`model` set to that instance's UID; the answer comes back with `model` set to the public name
again, SSE streams passed through line by line and always run to their end. A failure before
any byte reached the client (connect error, 503, instance gone) is retried once on another
instance. The Xinference API key comes from configuration only: client Authorization headers
are never forwarded, and the key is never logged.

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
RETRYABLE_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


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
        client: httpx.AsyncClient = state["client"]
        tried: list[str] = []
        failure: Response | None = None
        tried_lease: Lease | None = None
        for _attempt in range(2):
            lease = table.acquire(name, client_id=client_id, exclude=tried)
            if isinstance(lease, Refusal):
                if failure is not None:
                    break
                return refused(name, lease)
            tried.append(lease.uid)
            tried_lease = lease
            body["model"] = lease.uid
            upstream_request = client.build_request(
                "POST",
                request.url.path,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
            try:
                response = await client.send(upstream_request, stream=True)
            except RETRYABLE_TRANSPORT as exc:
                table.release(lease)
                metrics.retries.labels(name, type(exc).__name__).inc()
                failure = error(502, f"instance {lease.uid} unreachable: {exc}", "upstream_error")
                continue
            except httpx.TimeoutException:
                table.release(lease)
                return _finish(
                    lease, started, error(504, f"instance {lease.uid} timed out", "timeout")
                )
            except BaseException:
                table.release(lease)
                raise
            try:
                streaming = response.headers.get("content-type", "").startswith("text/event-stream")
                if not streaming or response.status_code >= 400:
                    content = await response.aread()
                    await response.aclose()
                    if response.status_code == 503 or _is_gone(response.status_code, content):
                        table.release(lease)
                        metrics.retries.labels(name, str(response.status_code)).inc()
                        failure = Response(
                            content, response.status_code, headers=_passed(response, lease)
                        )
                        continue
                    table.release(lease)
                    out = Response(
                        rewrite(content, lease.uid, name),
                        response.status_code,
                        headers=_passed(response, lease),
                    )
                    metrics.ttft.labels(name, lease.version, lease.tier).observe(
                        time.perf_counter() - started
                    )
                    return _finish(lease, started, out)
            except BaseException:
                table.release(lease)
                await response.aclose()
                raise
            return StreamingResponse(
                _stream(response, lease, name, started),
                status_code=response.status_code,
                headers=_passed(response, lease),
            )
        assert failure is not None and tried_lease is not None
        return _finish(tried_lease, started, failure)

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
        response: httpx.Response, lease: Lease, name: str, started: float
    ) -> AsyncIterator[bytes]:
        """Pass the SSE stream through complete lines at a time, rewriting `model`; release
        the lease only after the last byte (or when the client went away)."""
        labels = (lease.model, lease.version, lease.tier)
        first = True
        code = str(response.status_code)
        buffer = b""
        try:
            async for chunk in response.aiter_bytes():
                buffer += chunk
                cut = buffer.rfind(b"\n")
                if cut < 0:
                    continue
                out, buffer = buffer[: cut + 1], buffer[cut + 1 :]
                if first:
                    metrics.ttft.labels(*labels).observe(time.perf_counter() - started)
                    first = False
                yield rewrite(out, lease.uid, name)
            if buffer:
                yield rewrite(buffer, lease.uid, name)
        except httpx.HTTPError:
            code = "502"  # the upstream broke mid-stream: the client sees a truncated stream
            raise
        finally:
            table.release(lease)
            with anyio.CancelScope(shield=True):
                await response.aclose()
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
