"""Token counters over real HTTP: a stand-in upstream answers like Xinference's engines (usage on
whole answers; on streams, the transformers engine's usage-only chunk only when asked, vLLM's
usage on the finish chunk always), and the gateway counts what the answers report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.gateway.serving import CHAT, EMBEDDINGS, gateway
from xpool.gateway.routing import RoutingTable
from xpool.gateway.server import GatewayServer
from xpool.local.runtime import free_port

PROMPT, WORDS = 11, ("one", "two", "three")


class Upstream:
    """Records the bodies it received; `model` ending in `vllm` streams vLLM's way."""

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


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    server = Upstream()
    server.server.start()
    try:
        yield server
    finally:
        server.server.stop()


def _table(uid: str) -> RoutingTable:
    table = RoutingTable(seed=1)
    table.declare("chat", "LLM", "P0", {"1": 100})
    table.add("chat", "LLM", uid, version="1", tier="P0", limit=64)
    table.declare("embed", "embedding", "P1", {"2": 100})
    table.add("embed", "embedding", "embed--2--1", version="2", tier="P1", limit=64)
    return table


def _stream(g: Any, **extra: Any) -> list[dict[str, Any]]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with g.http.stream("POST", CHAT, json={**body, **extra}) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    return [json.loads(line[6:]) for line in lines]


def _counted(g: Any, model: str = "chat") -> tuple[float, float]:
    labels = {"model": model, "version": "1" if model == "chat" else "2"}
    return (
        g.value("xpool_gateway_prompt_tokens_total", **labels),
        g.value("xpool_gateway_completion_tokens_total", **labels),
    )


@pytest.mark.parametrize("uid", ["chat--1--1", "chat--1--vllm"])
def test_streams_count_usage_the_gateway_asked_for_and_hide_its_chunk(up: Upstream, uid: str):
    with gateway(up, table=_table(uid)) as g:  # type: ignore[arg-type]
        chunks = _stream(g)
        assert up.received[-1]["stream_options"] == {"include_usage": True}
        assert all(c["choices"] for c in chunks)  # no usage-only chunk reached the client
        assert [c["choices"][0]["delta"].get("content") for c in chunks[:3]] == list(WORDS)
        assert _counted(g) == (PROMPT, 3)

        asked = _stream(g, stream_options={"include_usage": True})  # the client's own ask
        assert asked[-1]["choices"] == [] and asked[-1]["usage"]["prompt_tokens"] == PROMPT
        assert asked[-1]["model"] == "chat"
        assert _counted(g) == (2 * PROMPT, 6)  # the last usage of a stream counts, once


def test_whole_answers_count_their_usage(up: Upstream):
    with gateway(up, table=_table("chat--1--1")) as g:  # type: ignore[arg-type]
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        r = g.http.post(CHAT, json=body)
        assert r.json()["usage"]["prompt_tokens"] == PROMPT
        assert "stream_options" not in up.received[-1]  # only streams are asked
        assert _counted(g) == (PROMPT, 3)  # not the 999 quoted in the answer's text

        r = g.http.post(EMBEDDINGS, json={"model": "embed", "input": "hi"})
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        assert _counted(g, "embed") == (7, 0)
