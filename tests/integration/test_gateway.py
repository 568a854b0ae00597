"""The gateway over real HTTP in front of one real embedded Xinference (module-scoped).

Platform: the quickstart with `chat` in tier P2 and `embedding` in tier P0, a global
`maxInflight` of 4 (P2 shed from 2 in flight), embedding at 2 instances.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import QUICKSTART, free_port
from xpool.adapters.xinference import Want, XinferenceClient, ensure_instances, wants_for
from xpool.gateway.app import create_app
from xpool.gateway.control import Scaler, gateway_wants, model_limits, table_for
from xpool.gateway.loadgen import Load, embedding_request
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.server import GatewayServer
from xpool.local.models import resolve_local_sources
from xpool.local.runtime import EmbeddedXinference
from xpool.render.launch import launch_specs
from xpool.validate import load_and_plan

TOKEN = "test-admin-token"


def platform_file(directory: Path) -> Path:
    text = QUICKSTART.read_text()
    text = text.replace("tier: P0", "tier: PX").replace("tier: P1", "tier: P0")
    text = text.replace("tier: PX", "tier: P2")
    text = text.replace(
        "    listen: 127.0.0.1:8000",
        "    listen: 127.0.0.1:8000\n    maxInflight: 4\n    tierHeadroom: 0.25",
    )
    text = text.replace("contextLength", "contextLength")
    path = directory / "platform.yaml"
    path.write_text(text)
    return path


class Stack:
    def __init__(self, directory: Path) -> None:
        self.state = directory / "state"
        loaded, plan = load_and_plan(platform_file(directory))
        self.platform = loaded.platform
        specs = launch_specs(self.platform, plan, loaded.architectures)
        wants = resolve_local_sources(
            wants_for(self.platform, specs, at_least=1), self.state, self.platform
        )
        self.wants = [
            w if w.model != "embedding" else Want(**{**w.__dict__, "count": 2}) for w in wants
        ]
        by_version, _ = gateway_wants(self.platform, specs, self.wants)
        self.by_version = dict(
            zip(
                by_version,
                resolve_local_sources(list(by_version.values()), self.state, self.platform),
                strict=True,
            )
        )
        self.xinf = EmbeddedXinference(self.state)
        self.endpoint = self.xinf.start(lambda _m: None)
        self.client = XinferenceClient(self.endpoint, timeout=60)
        self.table = table_for(self.platform, seed=1)
        self.metrics = GatewayMetrics(self.table)
        self.limits = model_limits(self.platform)
        self.log: list[str] = []
        self.scaler = Scaler(
            self.client,
            self.table,
            self.metrics,
            self.by_version,
            self.limits,
            drain_timeout=60,
            log=self.log.append,
        )
        self.server = GatewayServer(
            create_app(
                self.table,
                self.endpoint,
                metrics=self.metrics,
                admin=self.scaler,
                admin_token=TOKEN,
                timeout=120,
            ),
            f"127.0.0.1:{free_port()}",
        )
        self.server.start()

        def ready(want: Want, uid: str) -> None:
            lim = self.limits[want.model]
            self.table.add(
                want.model,
                want.model_type,
                uid,
                version=want.version,
                tier=lim.tier,
                limit=lim.request_limit,
            )

        ensure_instances(self.client, self.wants, on_ready=ready)
        self.http = httpx.Client(base_url=self.server.url, timeout=120)

    def stop(self) -> None:
        self.http.close()
        self.server.stop()
        self.client.close()
        self.xinf.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("gateway"))
    try:
        yield s
    finally:
        s.stop()


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
            httpx.Client(base_url=stack.server.url, timeout=120) as c,
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
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 422 and "min..max" in r.json()["error"]["message"]


def test_scale_down_under_load_drains_then_terminates_without_losing_a_request(stack: Stack):
    load = Load(stack.server.url, [embedding_request("embedding")], total=400, concurrency=4)
    load.start()
    while load.done_count() < 50:
        threading.Event().wait(0.05)
    r = stack.http.post(
        "/-/admin/scale",
        json={"model": "embedding", "instances": 1},
        headers={"Authorization": f"Bearer {TOKEN}"},
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
