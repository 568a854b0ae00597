"""Token load end to end over real processes: the gateway counts the usage of streamed and
whole answers, a REAL Prometheus scrapes it, and the reconciler's signal reader turns the
counters into prompt and completion tokens/s per model, marking tokens missing only for a
token-sized model whose requests report none."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

import pytest

from tests.gateway.serving import CHAT, PROMPT, TokenUpstream, gateway
from tests.unit.policy_world import model, spec_of
from xpool.adapters.prometheus import PrometheusClient
from xpool.gateway.routing import RoutingTable
from xpool.local.prometheus import LocalPrometheus
from xpool.policy.state import LoadObs
from xpool.reconcile.signals import Queries, read_loads
from xpool.render.environment import policy_yaml

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus binary is not installed (apt-get install -y prometheus)",
)


def _table() -> RoutingTable:
    table = RoutingTable(seed=1)
    for name, uid in (("chat", "chat--1--1"), ("old", "old--1--nousage"), ("idle", "idle--1--1")):
        table.declare(name, "LLM", "P1", {"1": 100})
        table.add(name, "LLM", uid, version="1", tier="P1", limit=64)
    return table


def queries() -> Queries:
    defaults = policy_yaml("promql.yaml")["reconciler"]
    return Queries(
        model_qps=defaults["modelQps"],
        gateway_up=defaults["gatewayUp"],
        model_prompt_tokens=defaults["modelPromptTokens"],
        model_completion_tokens=defaults["modelCompletionTokens"],
        model_arrival_cv2=defaults["modelArrivalCv2"],
        model_batch_queued_requests=defaults["modelBatchQueuedRequests"],
        model_batch_queued_tokens=defaults["modelBatchQueuedTokens"],
        utilization={},
    )


def test_token_rates_reach_the_reconciler(tmp_path) -> None:
    sized = {"prefill_tokens_per_s": 1e4, "decode_tokens_per_s": 1e3}
    spec = spec_of(
        [
            replace(model("chat", "P1"), **sized),
            replace(model("old", "P1"), **sized),
            replace(model("idle", "P1"), **sized),
            model("plain", "P1"),  # sized on QPS: its tokens are not read
        ]
    )
    up = TokenUpstream()
    up.server.start()
    prometheus = LocalPrometheus(tmp_path, scrape_interval=1.0)
    try:
        with gateway(up, table=_table()) as g, prometheus:  # type: ignore[arg-type]
            prometheus.set_targets("xpool-gateway", [f"{g.address[0]}:{g.address[1]}"])
            body = {"messages": [{"role": "user", "content": "hi"}]}
            loads: dict[str, LoadObs] = {}
            deadline = time.monotonic() + 60
            with PrometheusClient(prometheus.url) as client:
                while time.monotonic() < deadline:
                    with g.http.stream(
                        "POST", CHAT, json={**body, "model": "chat", "stream": True}
                    ) as r:
                        r.read()
                    g.http.post(CHAT, json={**body, "model": "old"})
                    loads = read_loads(client, queries(), spec, {"p": "nvidia"})
                    chat = loads["chat"]
                    if chat.prompt_tokens_per_s and loads["old"].qps:
                        break
                    time.sleep(0.5)
    finally:
        up.server.stop()

    chat = loads["chat"]
    assert chat.prompt_tokens_per_s and chat.completion_tokens_per_s and chat.qps
    # every streamed answer reports PROMPT prompt and 3 completion tokens (a scrape may fall
    # between the two counters' increments)
    ratio = chat.prompt_tokens_per_s / chat.completion_tokens_per_s
    assert ratio == pytest.approx(PROMPT / 3, rel=0.1)
    assert chat.missing == ()
    none = {"batch_queued_requests": 0.0, "batch_queued_tokens": 0.0}
    assert loads["idle"] == LoadObs(
        qps=0.0, prompt_tokens_per_s=0.0, completion_tokens_per_s=0.0, **none
    )
    old = loads["old"]
    assert old.prompt_tokens_per_s is None and old.completion_tokens_per_s is None
    assert old.missing == (
        "prompt tokens (no series while requests are served)",
        "completion tokens (no series while requests are served)",
    )
    assert loads["plain"] == LoadObs(qps=0.0, **none)
