"""A minimal OpenAI-compatible forwarder (Starlette + httpx).

Requests name a public model (`"model": "chat"`); the gateway picks one of its ready instance
UIDs round-robin from the routing table, rewrites `model` to that UID and forwards the body
to Xinference with pooled connections, passing the response (SSE streams included) through
unchanged. Unknown models get 404 JSON. The Xinference API key comes from configuration,
never from the client. The gateway issue replaces this with drain, canary weights,
least-outstanding balancing, retries and priority admission.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from xpool.gateway.routing import RoutingTable

FORWARDED = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank")
PASSED_HEADERS = ("content-type", "cache-control", "x-request-id")


def error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def create_app(
    table: RoutingTable,
    upstream: str,
    *,
    api_key: str | None = None,
    timeout: float = 600.0,
    max_connections: int = 256,
) -> Starlette:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    state: dict[str, httpx.AsyncClient] = {}

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
                "instances": len(r.uids),
            }
            for r in table.routes()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def forward(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "the request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error(400, "the request needs a 'model' field", "invalid_request_error")
        name = body["model"]
        uid = table.pick(name)
        if uid is None:
            known = ", ".join(r.model for r in table.routes() if r.uids) or "none"
            return error(
                404, f"model '{name}' has no ready instance (models: {known})", "not_found"
            )
        body["model"] = uid
        client = state["client"]
        upstream_request = client.build_request("POST", request.url.path, json=body)
        try:
            response = await client.send(upstream_request, stream=True)
        except httpx.TransportError as exc:
            return error(502, f"instance {uid} unreachable: {exc}", "upstream_error")
        passed = {k: v for k, v in response.headers.items() if k.lower() in PASSED_HEADERS}
        passed["x-xpool-instance"] = uid
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers=passed,
            background=BackgroundTask(response.aclose),
        )

    routes = [Route("/v1/models", models, methods=["GET"])]
    routes += [Route(path, forward, methods=["POST"]) for path in FORWARDED]
    return Starlette(routes=routes, lifespan=lifespan)
