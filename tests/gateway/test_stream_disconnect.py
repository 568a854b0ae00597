"""A client that leaves while the gateway waits for a stream's first event must not leave
the instance's lease held: the slot would count a request in flight forever, and a drain of
that instance would wait out its whole drainTimeout for nothing.

The upstream holds each stream's first event back (HOLD seconds); the client sends a
streaming request and closes its connection before that event comes, so the gateway returns
its streaming response to a client that is already gone. Under uvicorn (ASGI spec 2.3) the
response still starts its body; a server on spec 2.4 raises from `send` at once, so the body
never starts: the second test calls the app as such a server does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.gateway.serving import CHAT, Gateway, chat_table
from xpool.gateway.app import create_app
from xpool.gateway.server import GatewayServer
from xpool.local.runtime import free_port

HOLD = 0.5
UID = "chat--1--1"


class SlowStreams:
    """An upstream whose streams send their first event after HOLD seconds."""

    def __init__(self) -> None:
        self.started = 0
        app = Starlette(routes=[Route(CHAT, self.chat, methods=["POST"])])
        self.server = GatewayServer(app, f"127.0.0.1:{free_port()}")

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.started += 1
        return StreamingResponse(self._events(body["model"]), media_type="text/event-stream")

    async def _events(self, uid: str) -> AsyncIterator[bytes]:
        await asyncio.sleep(HOLD)
        for word in ("one", "two"):
            chunk = {"object": "chat.completion.chunk", "model": uid, "choices": [{"delta": word}]}
            yield b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
        yield b"data: [DONE]\r\n\r\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[SlowStreams]:
    up = SlowStreams()
    up.server.start()
    try:
        yield up
    finally:
        up.server.stop()


@pytest.fixture(scope="module")
def gateway(upstream: SlowStreams) -> Iterator[Gateway]:
    up = upstream
    table = chat_table()
    server = GatewayServer(create_app(table, up.server.url), f"127.0.0.1:{free_port()}")
    server.start()
    running = Gateway(server, table)
    try:
        yield running
    finally:
        running.http.close()
        server.stop()


def _leave_early(address: tuple[str, int]) -> None:
    body = json.dumps({"model": "chat", "stream": True, "messages": []}).encode()
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(
            b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: "
            b"application/json\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        time.sleep(HOLD / 5)  # the gateway is waiting for the first event


def _wait_idle(gateway: Gateway, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while gateway.table.inflight(UID) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gateway.table.inflight(UID)


def test_a_client_gone_before_the_first_event_releases_its_lease(gateway: Gateway):
    for _ in range(5):
        _leave_early(gateway.address)
    assert _wait_idle(gateway, HOLD * 10) == 0


def test_a_client_gone_on_a_spec_2_4_server_releases_its_lease(upstream: SlowStreams):
    table = chat_table()
    app = create_app(table, upstream.server.url)
    body = json.dumps({"model": "chat", "stream": True, "messages": []}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CHAT,
        "raw_path": CHAT.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"x")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        raise OSError("the client went away")  # what a spec 2.4 server does (ASGI spec)

    async def call() -> None:
        async with app.router.lifespan_context(app):
            with pytest.raises(ClientDisconnect):
                await app(scope, receive, send)

    anyio.run(call)
    assert table.inflight(UID) == 0


def test_a_stream_read_to_the_end_still_releases_and_counts(gateway: Gateway):
    before = gateway.value("xpool_gateway_requests_total", model="chat", code="200")
    with gateway.http.stream("POST", CHAT, json={"model": "chat", "stream": True}) as response:
        text = "".join(response.iter_text())
    assert response.status_code == 200 and text.count("data: ") == 3
    assert '"model": "chat"' in text and UID not in text
    assert _wait_idle(gateway, 5) == 0
    assert gateway.value("xpool_gateway_requests_total", model="chat", code="200") == before + 1
