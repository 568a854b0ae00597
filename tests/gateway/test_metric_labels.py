"""Clients cannot create metric series: over real HTTP, requests naming 500 models the
platform does not declare (and malformed, oversized or unauthorised ones) leave the set of
series /metrics shows as it was after the first; they are counted under `model="(unknown)"`."""

from __future__ import annotations

from tests.gateway.serving import CHAT, gateway, upstream
from xpool.gateway.metrics import UNKNOWN_MODEL
from xpool.gateway.routing import RoutingTable

KEY = "k-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {KEY}"}


def unknown(i: int) -> dict:
    return {"model": f"no-such-model-{i}", "messages": [{"role": "user", "content": "hi"}]}


def test_unknown_model_names_add_no_series():
    table = RoutingTable(seed=1)
    table.declare("chat", "LLM", "P0", {"1": 100})
    table.add("chat", "LLM", "chat--1--1", version="1", tier="P0", limit=1)
    table.declare("idle", "LLM", "P2", {"1": 100})  # declared, no instance yet
    with upstream() as up, gateway(up, table=table, client_keys=[KEY]) as g:
        assert g.http.post(CHAT, json={**unknown(0), "model": "chat"}, headers=BEARER).is_success
        assert (
            g.http.post(CHAT, json={**unknown(0), "model": "idle"}, headers=BEARER).status_code
            == 429
        )
        assert g.http.post(CHAT, json=unknown(0), headers=BEARER).status_code == 404
        before = g.series()

        for i in range(1, 501):
            r = g.http.post(CHAT, json=unknown(i), headers=BEARER)
            assert r.status_code == 404 and f"no-such-model-{i}" in r.json()["error"]["message"]
        g.http.post(CHAT, json=unknown(501))  # no key: 401
        g.http.post(CHAT, content=b'{"model": "x"' + b"[" * 100, headers=BEARER)  # 400
        g.http.post(CHAT, json={"model": ["x"]}, headers=BEARER)  # 400
        after = g.series()
        requests = "xpool_gateway_requests_total"
        assert g.value(requests, model=UNKNOWN_MODEL, code="404") == 501
        assert g.value(requests, model="idle", code="429") == 1

    assert after == before
    labels = {value for _, pairs in after for _, value in pairs}
    assert not any(value.startswith("no-such-model") for value in labels)
