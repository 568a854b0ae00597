"""Requests through a local gateway: the example `curl` lines `xpool up` prints, and the smoke
requests `xpool up --smoke` sends (one per embedding or chat model, each answer summarised in
one line). Rerank models get an example line only. With client API keys configured, the
example lines read the first key from its variable (never printing it) and the smoke requests
send it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from xpool.errors import RemoteError
from xpool.render.instances import Want

SMOKE_TIMEOUT = 120.0  # a first request may wait for a model's warm-up on CPU


def _example_body(want: Want) -> tuple[str, dict[str, Any]]:
    if want.model_type == "embedding":
        return "embeddings", {"model": want.model, "input": "hello"}
    if want.model_type == "rerank":
        return "rerank", {"model": want.model, "query": "hello", "documents": ["hi", "bye"]}
    return "chat/completions", {
        "model": want.model,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 16,
    }


def example_requests(gateway: str, wants: list[Want], key_env: str | None = None) -> list[str]:
    """One `curl` command line per model, ready to paste; with `key_env`, the first key of
    that variable as the bearer token (the shell expands it, so no key is printed)."""
    auth = f'-H "authorization: Bearer ${{{key_env}%%,*}}" ' if key_env else ""
    lines = []
    for want in wants:
        path, body = _example_body(want)
        lines.append(
            f"curl {gateway}/v1/{path} {auth}-H 'content-type: application/json' "
            f"-d '{json.dumps(body, separators=(',', ':'))}'"
        )
    return lines


def _embedding(http: httpx.Client, model: str) -> str:
    r = http.post("/v1/embeddings", json={"model": model, "input": "hello world"})
    if r.status_code != 200:
        raise RemoteError(f"smoke: embedding {model}: HTTP {r.status_code} {r.text[:200]}")
    vector = r.json()["data"][0]["embedding"]
    head = ", ".join(f"{x:.4f}" for x in vector[:4])
    return (
        f"{model}: embedding of 'hello world' = {len(vector)} floats [{head}, ...] "
        f"(instance {r.headers.get('x-xpool-instance')})"
    )


def _chat(http: httpx.Client, model: str) -> str:
    r = http.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
        },
    )
    if r.status_code != 200:
        raise RemoteError(f"smoke: chat {model}: HTTP {r.status_code} {r.text[:200]}")
    choice = r.json()["choices"][0]
    return (
        f"{model}: chat answer to 'Say hello.' = {choice['message']['content']!r} "
        f"(finish_reason {choice.get('finish_reason')}, "
        f"instance {r.headers.get('x-xpool-instance')})"
    )


def smoke_requests(gateway: str, wants: list[Want], api_key: str | None = None) -> list[str]:
    """One request per embedding or chat model through the gateway (with `api_key` as the
    bearer token), a line per answer; RemoteError naming the model when one fails."""
    out = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=gateway, headers=headers, timeout=SMOKE_TIMEOUT) as http:
        for want in wants:
            if want.model_type == "embedding":
                out.append(_embedding(http, want.model))
            elif want.model_type == "LLM":
                out.append(_chat(http, want.model))
    return out
