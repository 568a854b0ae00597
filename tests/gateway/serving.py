"""The real gateway app on uvicorn in front of a small real upstream, for the hardening tests.

The upstream stands in for Xinference's OpenAI routes: it answers `/v1/chat/completions` and
`/v1/embeddings` with the model UID it was sent, and records every body it received, so a
test can tell what reached it. `TokenUpstream` answers with token usage as Xinference's engines
do, streams included.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from xpool.gateway.app import create_app
from xpool.gateway.limits import DEFAULT_LIMITS, RequestLimits
from xpool.gateway.routing import RoutingTable
from xpool.gateway.server import GatewayServer
from xpool.local.runtime import free_port

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
PROMPT, WORDS = 11, ("one", "two", "three")  # what TokenUpstream's chat answers count


class Upstream:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        routes = [Route(path, self.answer, methods=["POST"]) for path in (CHAT, EMBEDDINGS)]
        self.server = GatewayServer(Starlette(routes=routes), f"127.0.0.1:{free_port()}")

    async def answer(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(body)
        return JSONResponse({"object": "list", "model": body["model"], "data": []})


class TokenUpstream:
    """Xinference's token reports: usage on whole answers; on streams, the transformers
    engine's usage-only chunk only when asked, and with a UID ending in `vllm`, vLLM's usage
    on the finish chunk always. A UID ending in `nousage` reports none (an older engine)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        routes = [
            Route(CHAT, self.chat, methods=["POST"]),
            Route(EMBEDDINGS, self.embed, methods=["POST"]),
        ]
        self.server = GatewayServer(Starlette(routes=routes), f"127.0.0.1:{free_port()}")

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(body)
        usage = {"prompt_tokens": PROMPT, "completion_tokens": 3, "total_tokens": PROMPT + 3}
        if body["model"].endswith("nousage"):
            return JSONResponse({"model": body["model"], "choices": []})
        if not body.get("stream"):
            message = {"role": "assistant", "content": 'say "usage": {"prompt_tokens": 999}'}
            choice = {"message": message, "finish_reason": "stop"}
            return JSONResponse({"model": body["model"], "choices": [choice], "usage": usage})
        asked = (body.get("stream_options") or {}).get("include_usage") is True
        events = _events(body["model"], usage, asked)
        return StreamingResponse(events, media_type="text/event-stream")

    async def embed(self, request: Request) -> Response:
        body = await request.json()
        data = [{"index": 0, "object": "embedding", "embedding": [0.5] * 384}]
        usage = {"prompt_tokens": 7, "total_tokens": 7}
        return JSONResponse(
            {"object": "list", "model": body["model"], "data": data, "usage": usage}
        )


class SlowUpstream(TokenUpstream):
    """TokenUpstream taking `delay` seconds per whole answer: an instance's service time.
    `arrived` records every body on arrival, answered or not (a client may go away)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.arrived: list[dict[str, Any]] = []

    async def chat(self, request: Request) -> Response:
        self.arrived.append(await request.json())
        await asyncio.sleep(self.delay)
        return await super().chat(request)

    async def embed(self, request: Request) -> Response:
        self.arrived.append(await request.json())
        await asyncio.sleep(self.delay)
        return await super().embed(request)


async def _events(uid: str, usage: dict[str, int], asked: bool) -> AsyncIterator[bytes]:
    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {"object": "chat.completion.chunk", "model": uid, "choices": choices, **extra}
        return b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"

    for word in WORDS:
        yield event([{"index": 0, "delta": {"content": word}}])
    finish = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    yield event(finish, usage=usage) if uid.endswith("vllm") else event(finish)
    if asked:  # the usage-only chunk, split over two writes
        whole = event([], usage=usage)
        yield whole[:20]
        yield whole[20:]
    yield b"data: [DONE]\r\n\r\n"


@contextmanager
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.server.start()
    try:
        yield up
    finally:
        up.server.stop()


class Gateway:
    """A running gateway app, its routing table and an HTTP client for it."""

    def __init__(self, server: GatewayServer, table: RoutingTable) -> None:
        self.server = server
        self.table = table
        self.http = httpx.Client(base_url=server.url, timeout=30)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.host, self.server.port

    def series(self) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        """Every sample /metrics shows: its name and its labels."""
        text = self.http.get("/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items())))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, sample: str, **labels: str) -> float:
        text = self.http.get("/metrics").text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == sample and labels.items() <= s.labels.items()
        )


def chat_table() -> RoutingTable:
    """`chat` with one instance, chat--1--1."""
    table = RoutingTable(seed=1)
    table.declare("chat", "LLM", "P0", {"1": 100})
    table.add("chat", "LLM", "chat--1--1", version="1", tier="P0", limit=64)
    return table


@contextmanager
def gateway(
    up: Upstream,
    *,
    table: RoutingTable | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
    client_keys: Sequence[str] = (),
    **app_options: Any,
) -> Iterator[Gateway]:
    """The gateway app on uvicorn routing `table` (default: `chat_table()`) to `up`."""
    table = table or chat_table()
    app = create_app(table, up.server.url, limits=limits, client_keys=client_keys, **app_options)
    server = GatewayServer(app, f"127.0.0.1:{free_port()}")
    server.start()
    running = Gateway(server, table)
    try:
        yield running
    finally:
        running.http.close()
        server.stop()


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """The status and raw bytes of the HTTP response on `conn` (read until it closes or the
    response's declared length arrived)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1]), body
