"""Canary safety in the gateway over real HTTP: weight 0 gets no traffic, failures before any
byte reached the client are retried on another version, and every upstream attempt is counted
per version (the canary gate's input).

The gateway app runs on uvicorn in front of a stand-in for Xinference's OpenAI routes, also on
uvicorn, whose behaviour follows the version in the UID (`chat--<version>--<n>`):
- "1", "3": healthy, after 10 ms (JSON answers; SSE streams of three chunks, then
  `data: [DONE]`);
- "2": broken as Xinference fails: 500 with `detail`, and for streams HTTP 200 with a ping and
  then `data: {"error": ...}` as the first event (restful_api.py `stream_results`);
- "4": streams break after their first event (the connection is cut);
- "5": answers after 2 s (longer than the gateway's timeout in the timeout test).
Every version answers 400 to `max_tokens` below 1, as Xinference validates the request.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from xpool.gateway.app import create_app
from xpool.gateway.routing import WARMUP_REQUESTS, Lease, Refusal, RoutingTable
from xpool.gateway.server import GatewayServer
from xpool.gateway.sse import first_event_data, is_error_event
from xpool.local.runtime import free_port

CHAT = "/v1/chat/completions"


# -- the Xinference stand-in -------------------------------------------------------------------


class Upstream:
    """The stand-in's server and every request it received: (the client's `user`, UID)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str]] = []
        app = Starlette(routes=[Route(CHAT, self.chat, methods=["POST"])])
        self.server = GatewayServer(app, f"127.0.0.1:{free_port()}")

    def by_version(self) -> Counter[str]:
        return Counter(uid.split("--")[1] for _, uid in self.attempts)

    def versions_per_request(self) -> dict[str, list[str]]:
        tried: dict[str, list[str]] = {}
        for user, uid in self.attempts:
            tried.setdefault(user, []).append(uid.split("--")[1])
        return tried

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        uid = body["model"]
        self.attempts.append((body.get("user", ""), uid))
        version = uid.split("--")[1]
        if body.get("max_tokens", 1) < 1:
            return JSONResponse({"detail": "max_tokens must be at least 1"}, 400)
        await asyncio.sleep(2 if version == "5" else 0.01)
        if not body.get("stream"):
            if version == "2":
                return JSONResponse({"detail": f"[{uid}] CUDA error: device-side assert"}, 500)
            message = {"role": "assistant", "content": "hello"}
            return JSONResponse(
                {"object": "chat.completion", "model": uid, "choices": [{"message": message}]}
            )
        return StreamingResponse(_events(uid, version), media_type="text/event-stream")


async def _events(uid: str, version: str) -> AsyncIterator[bytes]:
    if version == "2":
        yield b": ping - 2025-01-01 00:00:00\r\n\r\n"
        yield b'data: {"error": "CUDA error: device-side assert"}\r\n\r\n'
        return
    for word in ("one", "two", "three"):
        chunk = {"object": "chat.completion.chunk", "model": uid, "choices": [{"delta": word}]}
        yield b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
        await asyncio.sleep(0)
        if version == "4":
            raise ConnectionAbortedError("the worker died mid-stream")
    yield b"data: [DONE]\r\n\r\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.server.start()
    try:
        yield up
    finally:
        up.server.stop()


# -- the gateway ---------------------------------------------------------------------------------


class Gateway:
    """The real gateway app on uvicorn; `chat` has the given weights and instances."""

    def __init__(
        self,
        upstream: Upstream,
        weights: Mapping[str, float],
        uids: list[str],
        limit: int,
        timeout: float,
    ) -> None:
        self.table = RoutingTable(seed=1)
        self.table.declare("chat", "LLM", "P0", weights)
        for uid in uids:
            self.table.add("chat", "LLM", uid, version=uid.split("--")[1], tier="P0", limit=limit)
        app = create_app(self.table, upstream.server.url, timeout=timeout)
        self.server = GatewayServer(app, f"127.0.0.1:{free_port()}")
        self.server.start()
        self.http = httpx.Client(base_url=self.server.url, timeout=30)
        upstream.attempts.clear()

    def stop(self) -> None:
        self.http.close()
        self.server.stop()

    def metric(self, sample: str, **labels: str) -> float:
        """The sum of `sample`'s values whose labels include `labels`, read from /metrics."""
        text = self.http.get("/metrics").text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == sample and labels.items() <= s.labels.items()
        )

    def upstream_codes(self, version: str) -> dict[str, float]:
        text = self.http.get("/metrics").text
        return {
            s.labels["code"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "xpool_gateway_upstream_responses_total" and s.labels["version"] == version
        }


@pytest.fixture
def gateway(upstream: Upstream) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(
        weights: Mapping[str, float], uids: list[str], limit: int = 16, timeout: float = 30.0
    ) -> Gateway:
        started.append(Gateway(upstream, weights, uids, limit, timeout))
        return started[-1]

    yield make
    for g in started:
        g.stop()


def ask(http: httpx.Client, i: int, **extra: Any) -> tuple[int, str, list[str]]:
    """Chat request `i` (its `user`), a stream when `i` is odd, with a client id for every
    third: the status, the serving version and the SSE lines (or the JSON body as one line)."""
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": i % 2 == 1,
        "user": f"req-{i}",
    }
    headers = {"X-Client-Id": f"client-{i}"} if i % 3 == 0 else {}
    with http.stream("POST", CHAT, json={**body, **extra}, headers=headers) as r:
        if body["stream"] and r.status_code == 200:
            lines = [line for line in r.iter_lines() if line]
        else:
            lines = [r.read().decode()]
        return r.status_code, r.headers.get("x-xpool-version", ""), lines


def ask_many(g: Gateway, count: int) -> list[tuple[int, str, list[str]]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: ask(g.http, i), range(count)))


def complete(i: int, lines: list[str]) -> bool:
    """A whole answer under the public name: a stream up to `data: [DONE]`, or the JSON."""
    if i % 2 == 0:
        return json.loads(lines[0])["model"] == "chat"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    return (
        lines[-1] == "data: [DONE]"
        and len(chunks) == 3
        and {c["model"] for c in chunks} == {"chat"}
    )


# -- over HTTP -------------------------------------------------------------------------------


def test_a_broken_canary_at_50_percent_costs_no_client_request(gateway, upstream):
    g = gateway({"1": 50, "2": 50}, ["chat--1--1", "chat--1--2", "chat--2--1", "chat--2--2"])
    results = ask_many(g, 200)
    assert [r[0] for r in results] == [200] * 200
    assert all(complete(i, lines) for i, (_, _, lines) in enumerate(results))
    assert {version for _, version, _ in results} == {"1"}
    tried = upstream.by_version()
    assert tried["1"] == 200, "each request reached the stable version exactly once"
    assert 50 <= tried["2"] <= 150, tried
    per_request = upstream.versions_per_request()
    assert {tuple(v) for v in per_request.values()} == {("1",), ("2", "1")}, "retry: version 1"
    codes = g.upstream_codes("2")
    assert set(codes) == {"500", "stream_error"} and sum(codes.values()) == tried["2"]
    assert g.upstream_codes("1") == {"200": 200.0}
    assert g.metric("xpool_gateway_retries_total", model="chat") == tried["2"]
    ttft = "xpool_gateway_time_to_first_token_seconds_count"
    assert g.metric(ttft, version="1") == 200 and g.metric(ttft, version="2") == 0


def test_weight_zero_gets_no_upstream_attempt_even_when_the_weighted_version_is_full(
    gateway, upstream
):
    """Version 1 takes 2 requests at a time and 8 clients send: the overflow gets 429s, not
    the rolled-back version 2."""
    g = gateway({"1": 100, "2": 0}, ["chat--1--1", "chat--2--1"], limit=2)
    results = ask_many(g, 100)
    served = [version for status, version, _ in results if status == 200]
    shed = [json.loads(lines[0])["error"] for status, _, lines in results if status == 429]
    assert len(served) + len(shed) == 100 and set(served) == {"1"}
    assert shed and {e["reason"] for e in shed} == {"instance_limits"}
    assert upstream.by_version() == {"1": len(served)}
    assert g.upstream_codes("2") == {}


def test_a_4xx_reaches_the_client_after_one_attempt(gateway, upstream):
    g = gateway({"1": 50, "2": 50}, ["chat--1--1", "chat--2--1"])
    for i in (0, 1):
        status, _, lines = ask(g.http, i, max_tokens=0)
        assert status == 400
        assert json.loads(lines[0]) == {"detail": "max_tokens must be at least 1"}
    assert len(upstream.attempts) == 2
    assert g.metric("xpool_gateway_upstream_responses_total", code="400") == 2
    assert g.metric("xpool_gateway_retries_total") == 0


def test_a_weight_zero_version_serves_when_no_weighted_version_has_an_instance(gateway, upstream):
    g = gateway({"1": 100, "3": 0}, ["chat--3--1"])
    results = ask_many(g, 10)
    assert [(status, version) for status, version, _ in results] == [(200, "3")] * 10
    assert all(complete(i, lines) for i, (_, _, lines) in enumerate(results))


def test_three_failed_attempts_give_the_client_the_last_failure(gateway, upstream):
    g = gateway({"2": 100}, [f"chat--2--{n}" for n in range(1, 5)])
    status, _, lines = ask(g.http, 0)
    assert status == 500 and "device-side assert" in json.loads(lines[0])["detail"]
    assert len(set(upstream.attempts)) == 3, "three different instances"
    status, _, lines = ask(g.http, 1)
    assert status == 200
    assert lines == [
        ": ping - 2025-01-01 00:00:00",
        'data: {"error": "CUDA error: device-side assert"}',
    ]
    assert len(upstream.attempts) == 6
    assert g.upstream_codes("2") == {"500": 3.0, "stream_error": 3.0}
    assert g.metric("xpool_gateway_retries_total", model="chat") == 4


def test_a_stream_cut_after_its_first_event_is_counted_once_as_broken(gateway, upstream):
    g = gateway({"4": 100}, ["chat--4--1", "chat--4--2"])
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        g.http.stream("POST", CHAT, json={"model": "chat", "stream": True}) as r,
    ):
        received.extend(line for line in r.iter_lines() if line)
    assert len(received) == 1 and json.loads(received[0][6:])["model"] == "chat"
    assert len(upstream.attempts) == 1
    assert g.upstream_codes("4") == {"stream_broken": 1.0}
    assert g.metric("xpool_gateway_requests_total", version="4", code="502") == 1


def test_a_timeout_is_a_504_without_retry(gateway, upstream):
    g = gateway({"5": 100}, ["chat--5--1", "chat--5--2"], timeout=0.5)
    status, _, lines = ask(g.http, 0)
    assert status == 504 and json.loads(lines[0])["error"]["type"] == "timeout"
    assert len(upstream.attempts) == 1
    assert g.upstream_codes("5") == {"timeout": 1.0}


# -- the routing table and the SSE head, directly ----------------------------------------------


def canary_table(limit: int = 1) -> RoutingTable:
    t = RoutingTable(seed=1)
    t.declare("chat", "LLM", "P0", {"1": 100, "2": 0})
    t.add("chat", "LLM", "chat--1--1", version="1", tier="P0", limit=limit)
    t.add("chat", "LLM", "chat--2--1", version="2", tier="P0", limit=limit)
    return t


def test_weight_zero_is_no_spillover_for_a_weighted_version_at_its_limit():
    t = canary_table()
    held = t.acquire("chat")
    assert isinstance(held, Lease) and held.version == "1"
    full = t.acquire("chat")
    assert isinstance(full, Refusal) and (full.status, full.reason) == (429, "instance_limits")
    t.release(held)
    t.mark_draining("chat--1--1")
    fallback = t.acquire("chat")
    assert isinstance(fallback, Lease) and fallback.version == "2"


def test_a_retry_avoids_the_failed_version_while_another_has_a_free_instance():
    t = RoutingTable(seed=1)
    t.declare("chat", "LLM", "P0", {"1": 50, "2": 50})
    for uid in ("chat--1--1", "chat--2--1", "chat--2--2"):
        t.add("chat", "LLM", uid, version=uid.split("--")[1], tier="P0", limit=1)
    retries = [t.acquire("chat", exclude=["chat--2--1"], avoid_version="2") for _ in range(2)]
    assert [getattr(x, "uid", None) for x in retries] == ["chat--1--1", "chat--2--2"]


def test_the_first_sse_event_with_data_decides():
    assert first_event_data(b": ping\r\n\r\ndata: {") is None
    assert first_event_data(b": ping\r\n\r\ndata: {\r\ndata: }\r\n\r\n") == b"{\n}"
    assert first_event_data(b"event: x\n\ndata:[DONE]\n\n") == b"[DONE]"
    assert is_error_event(b'{"error": "boom"}')
    assert not is_error_event(b'{"choices": [{"delta": "\\"error\\""}]}')
    assert not is_error_event(b"[DONE]")


def test_the_gate_histogram_counts_warm_successful_attempts_only(gateway, upstream):
    """Each instance's first WARMUP_REQUESTS are its warm-up; failures and 4xx say nothing
    about a version's speed: none of them is in the gate's TTFT histogram, all in the TTFT."""
    g = gateway({"1": 50, "2": 50}, ["chat--1--1", "chat--2--1"])
    answers = [ask(g.http, 2 * i) for i in range(30)]  # JSON answers only (even `i`)
    assert all(status == 200 for status, _, _ in answers)
    assert ask(g.http, 100, max_tokens=0)[0] == 400
    served = {
        v: g.metric("xpool_gateway_time_to_first_token_seconds_count", version=v) for v in "12"
    }
    gated = {v: g.metric("xpool_gateway_gate_ttft_seconds_count", version=v) for v in "12"}
    attempts = upstream.by_version()
    # version 2 fails every attempt (retried on version 1): never in the gate's histogram
    assert gated["2"] == 0 and attempts["2"] > 0
    # version 1: every attempt answered, but its first 5 were its warm-up, and the 400 is out
    assert served["1"] == attempts["1"]
    assert gated["1"] == attempts["1"] - WARMUP_REQUESTS - 1
