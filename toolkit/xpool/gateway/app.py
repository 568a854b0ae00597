"""The OpenAI-compatible gateway (Starlette + httpx), assembled from its parts:

- `gateway/proxy.py` (`Proxy`): the request path of `/v1/chat/completions`, `/v1/completions`,
  `/v1/embeddings`, `/v1/rerank` (admission, canary pick, instance choice, retries before the
  first byte, SSE relay), `GET /v1/models`, and `GET /metrics` (the app's own registry);
- `gateway/admin_routes.py` (`AdminRoutes`): `/-/admin/*`, loopback clients with the admin
  token only, driving an `Admin` controller (`gateway/control.py`, `Scaler`).

- with a `batch_store`, the Batch API (`gateway/batch_api.py`: `/v1/files`, `/v1/batches`)
  and its runner (`gateway/batch_runner.py`), a task of the app's lifespan.

Both read bodies within `limits` (`gateway/limits.py`); `client_keys`, when given, are the
bearer tokens `/v1/*` requires (`gateway/auth.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xpool.adapters.object_store import ObjectStore
from xpool.gateway.admin_routes import Admin, AdminRoutes, WorkerGroups
from xpool.gateway.auth import Tokens
from xpool.gateway.batch_api import DEFAULT_BATCH_LIMITS, BatchApi, BatchLimits
from xpool.gateway.batch_book import BatchBook
from xpool.gateway.batch_runner import BatchRunner
from xpool.gateway.limits import DEFAULT_LIMITS, RequestLimits
from xpool.gateway.metrics import BatchBacklog, GatewayMetrics
from xpool.gateway.proxy import FORWARDED, Proxy
from xpool.gateway.responses import error
from xpool.gateway.routing import RoutingTable


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
    limits: RequestLimits = DEFAULT_LIMITS,
    client_keys: Sequence[str] = (),
    workers: WorkerGroups | None = None,
    batch_store: ObjectStore | None = None,
    batch_limits: BatchLimits = DEFAULT_BATCH_LIMITS,
    run_batches: bool = True,
    batch_off: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The app. With a `batch_store`, the Batch API; `run_batches`: this process also runs
    the stored batches (one process per store does); without a store, `batch_off` is why: the
    Batch API's paths answer 503 saying so, instead of a bare 404; `clock`: the Batch API's (unix seconds:
    timestamps, completion windows)."""
    metrics = metrics or GatewayMetrics(table)
    proxy = Proxy(
        table,
        upstream,
        metrics,
        api_key=api_key,
        timeout=timeout,
        max_connections=max_connections,
        client_id_header=client_id_header,
        retry_after=retry_after,
        limits=limits,
        client_keys=Tokens(client_keys) if client_keys else None,
    )
    routes = [
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/metrics", proxy.metrics_page, methods=["GET"]),
        *AdminRoutes(table, admin, admin_token, limits, workers).routes(),
        *(Route(path, proxy.forward, methods=["POST"]) for path in FORWARDED),
    ]
    lifespan = proxy.lifespan
    if batch_store is not None:
        table.batch_reserve = batch_limits.reserve
        table.batch_per_instance = batch_limits.instance_concurrency
        book = BatchBook(batch_store)
        runner = BatchRunner(book, proxy, table, clock)
        metrics.registry.register(BatchBacklog(runner.backlog))
        routes += BatchApi(book, runner, proxy, table, batch_limits).routes()
        if run_batches:
            lifespan = _with_runner(proxy, runner)
    elif batch_off is not None:
        routes += _batch_off_routes(batch_off)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.table = table
    return app


def _batch_off_routes(reason: str) -> list[Route]:
    async def off(_: Request) -> Response:
        return error(503, f"the Batch API is off on this gateway: {reason}", "batch_api_off")

    methods = ["GET", "POST", "DELETE"]
    return [
        Route(p, off, methods=methods) for p in ("/v1/files{rest:path}", "/v1/batches{rest:path}")
    ]


def _with_runner(proxy: Proxy, runner: BatchRunner) -> Any:
    """The proxy's lifespan with the batch runner running inside it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with proxy.lifespan(app):
            task = asyncio.create_task(runner.run(), name="batch-runner")
            try:
                yield
            finally:
                runner.stop()
                await task

    return lifespan
