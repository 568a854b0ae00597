"""The Batch API's HTTP endpoints, as OpenAI's: `/v1/files` and `/v1/batches`.

Input problems that make a batch impossible are refused before anything is stored, with
OpenAI's error body and a 400: a file over `spec.batch.maxFileSize` or `maxLines`, another
purpose than `batch`, an endpoint or completion window OpenAI does not offer, lines naming
several models, a model the gateway does not serve or that does not serve the endpoint, a
`custom_id` used twice. A single line that cannot run goes to the error file instead.
Client API keys, when configured, are required as for the rest of `/v1/*`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xpool.batch.lines import ENDPOINTS, batch_model, count_lines, duplicate_ids, parse_lines
from xpool.batch.objects import (
    ACTIVE,
    FILES_PAGE,
    WINDOWS,
    file_object,
    new_batch,
    page,
    page_limit,
)
from xpool.config.models import BatchSpec
from xpool.config.sizes import format_size
from xpool.gateway.batch_book import BatchBook, new_id
from xpool.gateway.batch_runner import BatchRunner
from xpool.gateway.limits import read_json
from xpool.gateway.proxy import Proxy
from xpool.gateway.responses import error
from xpool.gateway.routing import RoutingTable

Endpoint = Callable[[Request], Awaitable[Response]]
FORM_OVERHEAD = 64 * 1024  # multipart framing and the purpose field around the file


_DEFAULTS = BatchSpec()


@dataclass(frozen=True)
class BatchLimits:
    """spec.batch's limits, and how much of an instance batch requests may take."""

    max_file_bytes: int = _DEFAULTS.max_file_size
    max_lines: int = _DEFAULTS.max_lines
    reserve: int = _DEFAULTS.reserve
    instance_concurrency: int = _DEFAULTS.instance_concurrency

    @classmethod
    def of(cls, batch: BatchSpec) -> BatchLimits:
        return cls(batch.max_file_size, batch.max_lines, batch.reserve, batch.instance_concurrency)


DEFAULT_BATCH_LIMITS = BatchLimits()


def _invalid(message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return error(400, message, "invalid_request_error", param=param, code=code)


def _not_found(what: str, object_id: str) -> JSONResponse:
    return error(404, f"no {what} with id '{object_id}'", "invalid_request_error", param="id")


class BatchApi:
    def __init__(
        self,
        book: BatchBook,
        runner: BatchRunner,
        proxy: Proxy,
        table: RoutingTable,
        limits: BatchLimits,
    ) -> None:
        self.book = book
        self.runner = runner
        self.proxy = proxy
        self.table = table
        self.limits = limits

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self._guard(self.upload), methods=["POST"]),
            Route("/v1/files", self._guard(self.list_files), methods=["GET"]),
            Route("/v1/files/{id}", self._guard(self.get_file), methods=["GET"]),
            Route("/v1/files/{id}", self._guard(self.delete_file), methods=["DELETE"]),
            Route("/v1/files/{id}/content", self._guard(self.file_content), methods=["GET"]),
            Route("/v1/batches", self._guard(self.create), methods=["POST"]),
            Route("/v1/batches", self._guard(self.list_batches), methods=["GET"]),
            Route("/v1/batches/{id}", self._guard(self.get_batch), methods=["GET"]),
            Route("/v1/batches/{id}/cancel", self._guard(self.cancel), methods=["POST"]),
        ]

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint` behind the client API keys."""

        async def guarded(request: Request) -> Response:
            denied = self.proxy.denied(request)
            return denied if denied is not None else await endpoint(request)

        return guarded

    # -- files ---------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        """`POST /v1/files` (multipart: `file`, `purpose=batch`)."""
        limit = self.limits.max_file_bytes
        declared = request.headers.get("content-length", "")
        too_large = _invalid(
            f"the file is larger than {format_size(limit)} (spec.batch.maxFileSize)",
            "file",
            "file_too_large",
        )
        if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
            return too_large
        try:
            form = await request.form(max_files=1, max_fields=8)
        except (HTTPException, MultiPartException) as exc:  # Starlette wraps the parser's
            detail = exc.detail if isinstance(exc, HTTPException) else exc.message
            return _invalid(f"the body is not a multipart form with one file: {detail}")
        upload, purpose = form.get("file"), form.get("purpose")
        if purpose != "batch":
            return _invalid(f"purpose must be 'batch', not {purpose!r}", "purpose")
        if not isinstance(upload, UploadFile):
            return _invalid("the form needs a 'file' part", "file")
        content = await upload.read(limit + 1)
        if len(content) > limit:
            return too_large
        lines = await anyio.to_thread.run_sync(count_lines, content)  # up to maxFileSize
        if lines > self.limits.max_lines:
            return _invalid(
                f"the file has {lines} request lines, more than {self.limits.max_lines} "
                "(spec.batch.maxLines)",
                "file",
                "too_many_lines",
            )
        meta = file_object(
            new_id("file-"),
            filename=upload.filename or "upload.jsonl",
            size=len(content),
            purpose="batch",
            now=self.runner.now(),
        )
        await anyio.to_thread.run_sync(self.book.put_file, meta, content)
        return JSONResponse(meta)

    async def list_files(self, request: Request) -> Response:
        """`GET /v1/files?purpose=&order=&after=&limit=`: newest first unless `order=asc`."""
        query = request.query_params
        limit = page_limit(query.get("limit"), FILES_PAGE, FILES_PAGE)
        if limit is None:
            return _invalid(f"limit must be an integer from 1 to {FILES_PAGE}", "limit")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            return _invalid("order must be 'asc' or 'desc'", "order")
        files = await anyio.to_thread.run_sync(self.book.files)
        purpose = query.get("purpose")
        files = [f for f in files if purpose is None or f["purpose"] == purpose]
        files = files[::-1] if order == "asc" else files
        return JSONResponse(page(files, after=query.get("after"), limit=limit))

    async def get_file(self, request: Request) -> Response:
        file_id = request.path_params["id"]
        meta = await anyio.to_thread.run_sync(self.book.file, file_id)
        return JSONResponse(meta) if meta is not None else _not_found("file", file_id)

    async def file_content(self, request: Request) -> Response:
        file_id = request.path_params["id"]
        content = await anyio.to_thread.run_sync(self.book.content, file_id)
        if content is None:
            return _not_found("file", file_id)
        return Response(content, media_type="application/jsonl")

    async def delete_file(self, request: Request) -> Response:
        """Delete a file; not the input of a batch that still runs (its lines would be lost to
        a restart): 409 naming the batch."""
        file_id = request.path_params["id"]
        if await anyio.to_thread.run_sync(self.book.file, file_id) is None:
            return _not_found("file", file_id)
        using = next(
            (
                b
                for b in await anyio.to_thread.run_sync(self._all)
                if b["input_file_id"] == file_id and b["status"] in ACTIVE
            ),
            None,
        )
        if using is not None:
            return error(
                409,
                f"file {file_id} is the input of batch {using['id']}, which is "
                f"{using['status']}; cancel it or wait until it ends",
                "invalid_request_error",
            )
        await anyio.to_thread.run_sync(self.book.delete_file, file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    # -- batches -------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        """`POST /v1/batches`: checked whole, then stored as validating for the runner."""
        body = await read_json(request, self.proxy.limits)
        if isinstance(body, Response):
            return body
        if not isinstance(body, dict):
            return _invalid("the request body must be a JSON object")
        checked = await self._check(body)
        if isinstance(checked, Response):
            return checked
        model, total = checked
        batch = new_batch(
            new_id("batch_"),
            input_file_id=body["input_file_id"],
            endpoint=body["endpoint"],
            window=body["completion_window"],
            metadata=body.get("metadata"),
            model=model,
            total=total,
            now=self.runner.now(),
        )
        await anyio.to_thread.run_sync(self.book.put_batch, batch)
        self.runner.created()
        return JSONResponse(batch)

    async def _check(self, body: dict[str, Any]) -> tuple[str | None, int] | Response:
        """The batch's model and line count, or the 400 refusing it."""
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        if endpoint not in ENDPOINTS:
            return _invalid(f"endpoint must be one of {', '.join(ENDPOINTS)}", "endpoint")
        if window not in WINDOWS:
            return _invalid(
                f"completion_window must be one of {', '.join(WINDOWS)}", "completion_window"
            )
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and len(metadata) <= 16
            and all(
                len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in metadata.items()
            )
        ):
            return _invalid(
                "metadata must be an object of at most 16 pairs, keys up to 64 characters, "
                "string values up to 512",
                "metadata",
            )
        file_id = body.get("input_file_id")
        meta = await anyio.to_thread.run_sync(self.book.file, str(file_id))
        if meta is None or meta["purpose"] != "batch":
            return _invalid(f"no batch input file with id {file_id!r}", "input_file_id")
        model, total, problem = await anyio.to_thread.run_sync(self._read, meta["id"], endpoint)
        if problem is None and model is not None:
            problem = self._serves(model, endpoint)
        if problem is not None:
            return _invalid(problem, "input_file_id")
        return model, total

    def _read(self, file_id: str, endpoint: str) -> tuple[str | None, int, str | None]:
        """The input file's model, line count and whole-batch problem (blocking: the file
        is read and parsed in a worker thread, away from the event loop)."""
        good, bad = parse_lines(self.book.content(file_id) or b"", endpoint)
        model, problem = batch_model(good)
        return model, len(good) + len(bad), problem or duplicate_ids(good)

    def _serves(self, model: str, endpoint: str) -> str | None:
        """Why the gateway cannot run `model` on `endpoint`, else None."""
        routes = {r.model: r for r in self.table.routes()}
        route = routes.get(model)
        if route is None:
            return f"model {model!r} is not served (models: {', '.join(sorted(routes))})"
        if route.model_type != ENDPOINTS[endpoint]:
            return f"model {model!r} is a {route.model_type} model; it does not serve {endpoint}"
        return None

    async def get_batch(self, request: Request) -> Response:
        batch_id = request.path_params["id"]
        batch = await anyio.to_thread.run_sync(self.book.batch, batch_id)
        return JSONResponse(batch) if batch is not None else _not_found("batch", batch_id)

    async def list_batches(self, request: Request) -> Response:
        """`GET /v1/batches?after=&limit=`: newest first."""
        limit = page_limit(request.query_params.get("limit"))
        if limit is None:
            return _invalid("limit must be an integer from 1 to 100", "limit")
        after = request.query_params.get("after")
        batches = await anyio.to_thread.run_sync(self._all)
        return JSONResponse(page(batches, after=after, limit=limit))

    def _all(self) -> list[dict[str, Any]]:
        found = (self.book.batch(batch_id) for batch_id in self.book.batch_ids())
        return [batch for batch in found if batch is not None]

    async def cancel(self, request: Request) -> Response:
        batch_id = request.path_params["id"]
        batch = await self.runner.cancel(batch_id)
        if batch is None:
            return _not_found("batch", batch_id)
        if batch["status"] not in ("cancelling", "cancelled"):
            return error(
                409,
                f"batch {batch_id} is {batch['status']}; only a validating or in-progress "
                "batch can be cancelled",
                "invalid_request_error",
            )
        return JSONResponse(batch)
