"""The gateway over real HTTP in front of one real embedded Xinference (module-scoped), run
by `xpool up`'s own session (xpool.actions.up) without Prometheus.

Platform: the quickstart with `chat` in tier P2 and `embedding` in tier P0, a global
`maxInflight` of 4 (P2 shed from 2 in flight), embedding scaled to 2 instances through the
admin API once up.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import QUICKSTART, free_port
from xpool.actions.runtime import Runtime
from xpool.actions.up import UpOptions, UpSession
from xpool.adapters.xinference import XinferenceClient
from xpool.gateway.loadgen import Load, embedding_request
from xpool.gateway.routing import RoutingTable
from xpool.local.admin import AdminClient
from xpool.local.up_state import UpState


def platform_file(directory: Path) -> Path:
    text = QUICKSTART.read_text()
    text = text.replace("tier: P0", "tier: PX").replace("tier: P1", "tier: P0")
    text = text.replace("tier: PX", "tier: P2")
    text = text.replace(
        "    listen: 127.0.0.1:8000",
        f"    listen: 127.0.0.1:{free_port()}\n    maxInflight: 4\n    tierHeadroom: 0.25",
    )
    path = directory / "platform.yaml"
    path.write_text(text)
    return path


@dataclass
class Stack:
    up: UpState  # what the session serves, as `up.json` records it
    table: RoutingTable  # the gateway's
    client: XinferenceClient  # the session's
    http: httpx.Client  # the gateway, as a client
    log: list[str]  # the session's progress lines (the Scaler's among them)

    @property
    def url(self) -> str:
        return self.up.gateway

    @property
    def token(self) -> str:
        return self.up.admin_token()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("gateway")
    options = UpOptions(
        str(platform_file(directory)), state_dir=str(directory / "state"), with_prometheus=False
    )
    log: list[str] = []
    session = UpSession(options, Runtime(log=log.append))
    try:
        up = session.start()
        with AdminClient.of(up, timeout=300) as admin:
            admin.call("POST", "/-/admin/scale", {"model": "embedding", "instances": 2})
        with httpx.Client(base_url=up.gateway, timeout=120) as http:
            yield Stack(up, session.table, session.client, http, log)
    finally:
        session.stop()


def metric(stack: Stack, name: str, **labels: str) -> float:
    text = stack.http.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_models_lists_public_names(stack: Stack):
    data = stack.http.get("/v1/models").json()["data"]
    assert {(m["id"], m["instances"], m["tier"]) for m in data} == {
        ("chat", 1, "P2"),
        ("embedding", 2, "P0"),
    }


def test_embeddings_balance_over_instances_and_answer_with_the_public_name(stack: Stack):
    seen = set()
    for i in range(6):
        r = stack.http.post("/v1/embeddings", json={"model": "embedding", "input": f"x{i}"})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "embedding"
        assert len(r.json()["data"][0]["embedding"]) == 384
        seen.add(r.headers["x-xpool-instance"])
    assert seen == {"embedding--1--1", "embedding--1--2"}
    assert metric(stack, "xpool_gateway_requests_total", model="embedding", code="200") >= 6


def test_chat_answers_and_streams_run_to_done_with_the_public_name(stack: Stack):
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    r = stack.http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "chat" and r.json()["choices"][0]["message"]
    with stack.http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
        assert s.status_code == 200
        lines = [line for line in s.iter_lines() if line.strip()]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks and {c["model"] for c in chunks} == {"chat"}
    assert metric(stack, "xpool_gateway_time_to_first_token_seconds_count", model="chat") >= 2


def test_real_answers_count_their_tokens_streams_included(stack: Stack):
    """Xinference's transformers engine reports a stream's usage only when asked: the gateway
    asks, counts it, and the client that did not ask sees no usage-only chunk."""

    def counted(model: str) -> tuple[float, float]:
        return (
            metric(stack, "xpool_gateway_prompt_tokens_total", model=model),
            metric(stack, "xpool_gateway_completion_tokens_total", model=model),
        )

    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    before = counted("chat")
    usage = stack.http.post("/v1/chat/completions", json=body).json()["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 8
    whole = counted("chat")
    assert whole == (before[0] + usage["prompt_tokens"], before[1] + usage["completion_tokens"])

    with stack.http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
        chunks = [json.loads(x[6:]) for x in s.iter_lines() if x.startswith("data: {")]
    assert chunks and all(c["choices"] for c in chunks)
    streamed = counted("chat")
    assert streamed[0] == whole[0] + usage["prompt_tokens"]  # the same prompt
    assert 0 < streamed[1] - whole[1] <= 8

    embedded = counted("embedding")[0]
    r = stack.http.post("/v1/embeddings", json={"model": "embedding", "input": "tokens"})
    assert counted("embedding")[0] == embedded + r.json()["usage"]["prompt_tokens"] > embedded


def test_unknown_model_is_404_and_bad_body_400(stack: Stack):
    r = stack.http.post("/v1/embeddings", json={"model": "nope", "input": "x"})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    assert stack.http.post("/v1/embeddings", content=b"{").status_code == 400


def test_an_instance_gone_behind_the_gateways_back_is_retried_on_another(stack: Stack):
    """embedding--1--9 is routed to but Xinference does not run it: Xinference answers before
    any byte reached the client, so each such request is retried once elsewhere."""
    stack.table.add("embedding", "embedding", "embedding--1--9", version="1", tier="P0", limit=8)
    try:
        codes = [
            stack.http.post("/v1/embeddings", json={"model": "embedding", "input": "r"}).status_code
            for _ in range(9)
        ]
    finally:
        stack.table.remove("embedding--1--9")
    assert codes == [200] * 9
    assert metric(stack, "xpool_gateway_retries_total", model="embedding") >= 3


def test_overload_sheds_p2_first_and_p0_still_gets_in(stack: Stack):
    """maxInflight 4, headroom 0.25: P2 (chat) is admitted below 2 in flight. Two long chat
    streams hold those; further chat requests get 429 with the reason; P0 embeddings pass."""
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "tell a long story"}],
        "max_tokens": 400,
        "stream": True,
    }
    started = threading.Barrier(3)
    done: list[str] = []

    def stream() -> None:
        with (
            httpx.Client(base_url=stack.url, timeout=120) as c,
            c.stream("POST", "/v1/chat/completions", json=body) as s,
        ):
            it = s.iter_lines()
            first = next(it)
            started.wait(30)
            rest = [line for line in it if line.strip()]
            done.append((rest or [first])[-1])

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait(60)
    shed = stack.http.post("/v1/chat/completions", json={**body, "stream": False})
    ok = stack.http.post("/v1/embeddings", json={"model": "embedding", "input": "p0"})
    for t in threads:
        t.join(120)
    assert shed.status_code == 429, shed.text
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["error"]["tier"] == "P2" and shed.json()["error"]["reason"] == "overload"
    assert ok.status_code == 200
    assert done == ["data: [DONE]", "data: [DONE]"]
    assert metric(stack, "xpool_gateway_shed_total", model="chat", tier="P2") >= 1


def test_admin_needs_the_token(stack: Stack):
    r = stack.http.post("/-/admin/scale", json={"model": "embedding", "instances": 1})
    assert r.status_code == 401
    r = stack.http.post(
        "/-/admin/scale",
        json={"model": "embedding", "instances": 5},
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    assert r.status_code == 422 and "min..max" in r.json()["error"]["message"]


def test_scale_down_under_load_drains_then_terminates_without_losing_a_request(stack: Stack):
    load = Load(stack.url, [embedding_request("embedding")], total=400, concurrency=4)
    load.start()
    while load.done_count() < 50:
        threading.Event().wait(0.05)
    r = stack.http.post(
        "/-/admin/scale",
        json={"model": "embedding", "instances": 1},
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=120,
    )
    assert load.done_count() < 400, "the load ended before the scale: make it longer"
    result = load.join(120)
    assert r.status_code == 200, r.text
    assert r.json()["terminated"] == ["embedding--1--2"] and r.json()["drainTimeouts"] == []
    assert result.failed == 0 and result.total == 400, result.line()
    assert [i.uid for i in stack.client.instances() if i.uid.startswith("embedding")] == [
        "embedding--1--1"
    ]
    assert any(re.search(r"embedding--1--2: draining", m) for m in stack.log)
    assert metric(stack, "xpool_gateway_inflight", instance="embedding--1--1") == 0
