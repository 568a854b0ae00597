"""Token counters over real HTTP: a stand-in upstream answers like Xinference's engines (usage on
whole answers; on streams, the transformers engine's usage-only chunk only when asked, vLLM's
usage on the finish chunk always), and the gateway counts what the answers report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.serving import CHAT, EMBEDDINGS, PROMPT, WORDS, TokenUpstream, gateway
from xpool.gateway.routing import RoutingTable


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
def test_streams_count_usage_the_gateway_asked_for_and_hide_its_chunk(up: TokenUpstream, uid: str):
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


def test_whole_answers_count_their_usage(up: TokenUpstream):
    with gateway(up, table=_table("chat--1--1")) as g:  # type: ignore[arg-type]
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        r = g.http.post(CHAT, json=body)
        assert r.json()["usage"]["prompt_tokens"] == PROMPT
        assert "stream_options" not in up.received[-1]  # only streams are asked
        assert _counted(g) == (PROMPT, 3)  # not the 999 quoted in the answer's text

        r = g.http.post(EMBEDDINGS, json={"model": "embed", "input": "hi"})
        assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384
        assert _counted(g, "embed") == (7, 0)
