"""The gateway's admin endpoint `/-/admin/*`: loopback clients with the admin token only, as
`Authorization: Bearer <token>` (a bare token or another scheme is refused). It drives an
`Admin` controller (`gateway/control.py`): instance lifecycle in non-blocking steps (launch,
drain, terminate, and the instances' states to observe), a blocking scale, canary weights;
and, for a multi-worker `xpool up`, its local worker groups (`/-/admin/workers`). Requests
and answers are JSON objects, read within the gateway's size and nesting limits like those of
`/v1/*`; errors are `{"error": {...}}` with 400/404/409/413/422, or 502 when Xinference
failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xpool.adapters.xinference import Pin
from xpool.errors import RemoteError
from xpool.gateway.auth import Tokens, unauthorized
from xpool.gateway.limits import DEFAULT_LIMITS, RequestLimits, read_json
from xpool.gateway.responses import error
from xpool.gateway.routing import RoutingTable

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
        self,
        model: str,
        version: str | None,
        count: int | None,
        uids: list[str] | None,
        pin: Pin | None = None,
    ) -> dict[str, Any]: ...

    def drain(self, uids: list[str]) -> dict[str, Any]: ...

    def terminate(self, uids: list[str], *, force: bool, timed_out: bool) -> dict[str, Any]: ...

    def scale(
        self, model: str, instances: int, *, force: bool, version: str | None
    ) -> dict[str, Any]: ...

    def set_weights(self, model: str, weights: dict[str, float]) -> dict[str, Any]: ...


class WorkerGroups(Protocol):
    """The worker groups of a multi-worker `xpool up` (local/cluster.py), behind
    `/-/admin/workers`: AdminError 409 for a group it does not run or replicas out of range."""

    def groups(self) -> dict[str, Any]: ...

    def scale(self, job: str, task: str, replicas: int) -> dict[str, Any]: ...


AdminCall = Callable[[Admin, dict[str, Any]], dict[str, Any]]

# -- request fields ----------------------------------------------------------------------------


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


# -- the calls, run in a worker thread -----------------------------------------------------------


def _scale(admin: Admin, p: dict[str, Any]) -> dict[str, Any]:
    return admin.scale(
        str(p["model"]), int(p["instances"]), force=_flag(p, "force"), version=p.get("version")
    )


def _pin(payload: dict[str, Any]) -> Pin | None:
    """`worker` (an Xinference worker address) and optional `gpuIdx` (device indices)."""
    worker, devices = payload.get("worker"), payload.get("gpuIdx")
    if worker is None:
        if devices is not None:
            raise AdminError(400, "gpuIdx: name the worker its devices are on")
        return None
    if not isinstance(worker, str) or not worker:
        raise AdminError(400, f"worker: must be a worker address host:port, not {worker!r}")
    if devices is not None and (
        not isinstance(devices, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
    ):
        raise AdminError(400, f"gpuIdx: must be a list of device indices, not {devices!r}")
    return worker, devices


def _launch(admin: Admin, p: dict[str, Any]) -> dict[str, Any]:
    uids = _uids(p) if "uids" in p else None
    version = None if p.get("version") is None else str(p["version"])
    return admin.launch(str(p["model"]), version, _count(p), uids, _pin(p))


def _drain(admin: Admin, p: dict[str, Any]) -> dict[str, Any]:
    return admin.drain(_uids(p))


def _terminate(admin: Admin, p: dict[str, Any]) -> dict[str, Any]:
    return admin.terminate(_uids(p), force=_flag(p, "force"), timed_out=_flag(p, "timedOut"))


def _scale_workers(groups: WorkerGroups, p: dict[str, Any]) -> dict[str, Any]:
    job, task, replicas = p.get("job"), p.get("task"), p.get("replicas")
    if not isinstance(job, str) or not isinstance(task, str):
        raise AdminError(400, "job, task: name the worker group (GET /-/admin/workers lists them)")
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise AdminError(400, f"replicas: must be a whole number, not {replicas!r}")
    return groups.scale(job, task, replicas)


def _weights(admin: Admin, p: dict[str, Any]) -> dict[str, Any]:
    weights = {str(k): float(v) for k, v in dict(p["weights"]).items()}
    return admin.set_weights(str(p["model"]), weights)


class AdminRoutes:
    """The admin endpoint's routes; every one answers 404 unless both an `Admin` and a token
    are given."""

    def __init__(
        self,
        table: RoutingTable,
        admin: Admin | None,
        token: str | None,
        limits: RequestLimits = DEFAULT_LIMITS,
        workers: WorkerGroups | None = None,
    ) -> None:
        self.table = table
        self.admin = admin
        self._tokens = Tokens([token] if token else [])
        self.limits = limits
        self.workers = workers

    def routes(self) -> list[Route]:
        return [
            Route("/-/admin/scale", self.scale, methods=["POST"]),
            Route("/-/admin/weights", self.weights, methods=["POST"]),
            Route("/-/admin/instances", self.instances, methods=["GET"]),
            Route("/-/admin/launch", self.launch, methods=["POST"]),
            Route("/-/admin/drain", self.drain, methods=["POST"]),
            Route("/-/admin/terminate", self.terminate, methods=["POST"]),
            Route("/-/admin/workers", self.worker_groups, methods=["GET", "POST"]),
        ]

    def _denied(self, request: Request) -> Response | None:
        """Why `request` may not use the endpoint (404 disabled, 403 not loopback, 401 wrong
        token), or None."""
        if self.admin is None or not self._tokens:
            return error(404, "the admin endpoint is not enabled", "not_found")
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            return error(403, "the admin endpoint answers loopback clients only", "forbidden")
        if not self._tokens.accept(request):
            return unauthorized(
                "missing or wrong admin token: send it as 'Authorization: Bearer <token>'",
                "unauthorized",
            )
        return None

    async def _call(self, request: Request, call: AdminCall, status: int = 200) -> Response:
        """Check the caller, read the JSON object, run `call` in a worker thread, map its
        errors."""
        denied = self._denied(request)
        if denied is not None:
            return denied
        payload = await read_json(request, self.limits)
        if isinstance(payload, Response):
            return payload
        if not isinstance(payload, dict):
            return error(400, "the request body must be a JSON object", "invalid_request_error")
        try:
            result = await anyio.to_thread.run_sync(call, self.admin, payload)
        except AdminError as exc:
            return error(exc.status, str(exc), "admin_error")
        except RemoteError as exc:
            return error(502, str(exc), "upstream_error")
        except (KeyError, TypeError, ValueError) as exc:
            return error(400, f"bad admin request: {exc}", "invalid_request_error")
        return JSONResponse(result, status_code=status)

    async def scale(self, request: Request) -> Response:
        return await self._call(request, _scale)

    async def launch(self, request: Request) -> Response:
        return await self._call(request, _launch, status=202)

    async def drain(self, request: Request) -> Response:
        return await self._call(request, _drain)

    async def terminate(self, request: Request) -> Response:
        return await self._call(request, _terminate)

    async def weights(self, request: Request) -> Response:
        return await self._call(request, _weights)

    async def worker_groups(self, request: Request) -> Response:
        """GET: each group's replicas and the worker processes; POST {job, task, replicas}:
        scale one group (answers at once; see LocalCluster.scale). 404 without local workers."""
        denied = self._denied(request)
        if denied is not None:
            return denied
        groups = self.workers
        if groups is None:
            return error(404, "this `xpool up` runs no local worker groups", "not_found")
        if request.method == "GET":
            return JSONResponse(await anyio.to_thread.run_sync(groups.groups))
        return await self._call(request, lambda _admin, p: _scale_workers(groups, p))

    async def instances(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        assert self.admin is not None
        table = self.table
        return JSONResponse(
            {
                "instances": self.admin.instances(),
                "weights": {r.model: table.weights(r.model) for r in table.routes()},
                "now": time.time(),
            }
        )
