"""A batch backlog reaches the reconciler as demand, over real processes: the gateway's
Batch API queues lines, a REAL Prometheus scrapes its backlog gauges, and the signal reader
gives each model its queued lines and tokens; the batch lines the gateway has served count
in no online signal (QPS, tokens), so they do not scale the model a second time."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.gateway.serving import TokenUpstream, gateway
from tests.integration.test_token_load import queries
from tests.unit.policy_world import model, spec_of
from xpool.adapters.object_store import DirStore
from xpool.adapters.prometheus import PrometheusClient
from xpool.gateway.routing import RoutingTable
from xpool.local.prometheus import LocalPrometheus
from xpool.policy.state import LoadObs
from xpool.reconcile.signals import read_loads

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus binary is not installed (apt-get install -y prometheus)",
)
LINES = 40


def _table() -> RoutingTable:
    """`chat` has room for batch work; `stuck`'s one slot is the interactive reserve, so its
    batch stays queued."""
    table = RoutingTable(seed=1)
    for name, limit in (("chat", 8), ("stuck", 1)):
        table.declare(name, "LLM", "P2", {"1": 100})
        table.add(name, "LLM", f"{name}--1--1", version="1", tier="P2", limit=limit)
    return table


def _submit(http, model: str) -> str:
    lines = [
        {
            "custom_id": f"{model}-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(LINES)
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = http.post(
        "/v1/files", data={"purpose": "batch"}, files={"file": ("in.jsonl", content)}
    )
    assert uploaded.status_code == 200, uploaded.text
    body = {
        "input_file_id": uploaded.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    created = http.post("/v1/batches", json=body)
    assert created.status_code == 200, created.text
    return created.json()["id"]


def test_backlog_is_demand_and_served_batch_lines_are_not_load(tmp_path: Path) -> None:
    sized = {"prefill_tokens_per_s": 1e4, "decode_tokens_per_s": 1e3}
    spec = spec_of([replace(model("chat", "P2"), **sized), replace(model("stuck", "P2"), **sized)])
    up = TokenUpstream()
    up.server.start()
    prometheus = LocalPrometheus(tmp_path / "prom", scrape_interval=1.0)
    store = DirStore(tmp_path / "store")
    try:
        with gateway(up, table=_table(), batch_store=store) as g, prometheus:
            prometheus.set_targets("xpool-gateway", [f"{g.address[0]}:{g.address[1]}"])
            done = _submit(g.http, "chat")
            _submit(g.http, "stuck")
            loads: dict[str, LoadObs] = {}
            deadline = time.monotonic() + 90
            with PrometheusClient(prometheus.url) as client:
                while time.monotonic() < deadline:
                    finished = g.http.get(f"/v1/batches/{done}").json()["status"] == "completed"
                    loads = read_loads(client, queries(), spec, {"p": "nvidia"})
                    # Prometheus has seen every served batch line (and so the rates over them)
                    seen = client.query('sum(xpool_gateway_requests_total{tier="(batch)"})')
                    if (
                        finished
                        and seen
                        and seen[0].value == LINES
                        and loads["stuck"].batch_queued_requests
                    ):
                        break
                    time.sleep(0.5)
            served = g.http.get("/metrics").text
    finally:
        up.server.stop()

    assert (
        f'xpool_gateway_requests_total{{code="200",model="chat",tier="(batch)",version="1"}} {LINES}.0'
        in served
    )
    stuck, chat = loads["stuck"], loads["chat"]
    assert stuck.batch_queued_requests == LINES
    assert stuck.batch_queued_tokens and stuck.batch_queued_tokens > LINES * 256  # max_tokens
    assert chat.batch_queued_requests == 0 and chat.batch_queued_tokens == 0
    # the 40 served lines are in the gateway's counters, but not in the online signals
    assert chat.qps == 0.0
    assert chat.prompt_tokens_per_s == 0.0 and chat.completion_tokens_per_s == 0.0
    assert chat.missing == () and stuck.missing == ()
