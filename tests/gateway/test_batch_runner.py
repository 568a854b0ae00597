"""The Batch API's runner over real HTTP: a gateway stopped mid-batch and a new one on the
same store finish the batch with each custom_id once; batch requests leave the reserve to
interactive ones, and an interactive request that finds every slot taken by batch requests
takes one of them (its line runs again later, once in the output)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.gateway.serving import CHAT, SlowUpstream, gateway
from xpool.adapters.object_store import DirStore
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.routing import RoutingTable
from xpool.local.runtime import free_port

HELLO = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def chat(limit: int) -> RoutingTable:
    t = RoutingTable(seed=1)
    t.declare("chat", "LLM", "P1", {"1": 100})
    t.add("chat", "LLM", "chat--1--1", version="1", tier="P1", limit=limit)
    return t


@pytest.fixture(scope="module")
def up() -> Iterator[SlowUpstream]:
    running = SlowUpstream(delay=0.05)
    running.server.start()
    try:
        yield running
    finally:
        running.server.stop()


def submit(http: httpx.Client, n: int) -> str:
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": CHAT,
            "body": {**HELLO, "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(n)
    ]
    raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    f = http.post("/v1/files", files={"file": ("in.jsonl", raw)}, data={"purpose": "batch"})
    assert f.status_code == 200, f.text
    body = {"input_file_id": f.json()["id"], "endpoint": CHAT, "completion_window": "24h"}
    b = http.post("/v1/batches", json=body)
    assert b.status_code == 200, b.text
    return b.json()["id"]


def batch(http: httpx.Client, batch_id: str) -> dict[str, Any]:
    return http.get(f"/v1/batches/{batch_id}").json()


def wait(http: httpx.Client, batch_id: str, ready: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not ready(b := batch(http, batch_id)):
        assert time.monotonic() < deadline, b
        time.sleep(0.05)
    return b


def output_ids(http: httpx.Client, b: dict[str, Any]) -> list[str]:
    text = http.get(f"/v1/files/{b['output_file_id']}/content").text
    return [json.loads(line)["custom_id"] for line in text.splitlines()]


def test_a_new_gateway_on_the_store_finishes_the_batch_each_line_once(
    up: SlowUpstream, tmp_path: Path
):
    up.received.clear()
    with gateway(up, table=chat(8), batch_store=DirStore(tmp_path)) as g:
        batch_id = submit(g.http, 300)
        # Stopped with lines finished, committed or not, and requests in flight.
        wait(g.http, batch_id, lambda b: b["request_counts"]["completed"] >= 30)
    first = len(up.received)
    with gateway(up, table=chat(8), batch_store=DirStore(tmp_path)) as g:
        done = wait(g.http, batch_id, lambda b: b["status"] == "completed")
        ids = output_ids(g.http, done)
    assert sorted(ids) == sorted(f"q{i}" for i in range(300))  # each exactly once
    assert done["request_counts"] == {"total": 300, "completed": 300, "failed": 0}
    assert 30 <= first < 300 and len(up.received) >= 300


class Process:
    """`tests/gateway/batch_process.py` on a free port, and an HTTP client for it."""

    def __init__(self, upstream: str, store: Path) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.batch_process", upstream, str(store), str(port)]
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.http.get("/v1/models")
                return
            except httpx.TransportError:
                assert self.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.http.close()


def test_a_gateway_killed_mid_batch_and_started_again_writes_each_line_once(
    up: SlowUpstream, tmp_path: Path
):
    up.received.clear()
    first = Process(up.server.url, tmp_path)
    try:
        batch_id = submit(first.http, 300)
        # Killed with lines committed, lines finished but not committed, requests in flight.
        wait(first.http, batch_id, lambda b: b["request_counts"]["completed"] >= 100)
        before = len(up.received)
    finally:
        first.kill()
    assert 100 <= before < 300
    second = Process(up.server.url, tmp_path)
    try:
        done = wait(second.http, batch_id, lambda b: b["status"] == "completed")
        ids = output_ids(second.http, done)
    finally:
        second.kill()
    assert sorted(ids) == sorted(f"q{i}" for i in range(300))  # each exactly once
    assert done["request_counts"] == {"total": 300, "completed": 300, "failed": 0}


def test_batch_requests_leave_the_reserve_to_interactive_ones(up: SlowUpstream, tmp_path: Path):
    limits = BatchLimits(reserve=2, instance_concurrency=100)
    with gateway(up, table=chat(6), batch_store=DirStore(tmp_path), batch_limits=limits) as g:
        batch_id = submit(g.http, 200)
        wait(g.http, batch_id, lambda b: b["request_counts"]["completed"] >= 10)
        peak = 0
        for _ in range(40):
            peak = max(peak, g.table.inflight("chat--1--1"))
            time.sleep(0.01)
        assert peak <= 4  # limit 6, reserve 2
        with httpx.Client(base_url=g.server.url, timeout=10) as http:
            answers = [http.post(CHAT, json=HELLO).status_code for _ in range(5)]
        assert answers == [200] * 5
        wait(g.http, batch_id, lambda b: b["status"] == "completed")


def test_an_interactive_request_takes_a_batch_requests_slot(tmp_path: Path):
    slow = SlowUpstream(delay=0.4)
    slow.server.start()
    limits = BatchLimits(reserve=0, instance_concurrency=2)
    try:
        with gateway(slow, table=chat(2), batch_store=DirStore(tmp_path), batch_limits=limits) as g:
            batch_id = submit(g.http, 12)
            wait(g.http, batch_id, lambda b: b["status"] == "in_progress")
            deadline = time.monotonic() + 10
            while g.table.inflight("chat--1--1") < 2:  # batch requests hold both slots
                assert time.monotonic() < deadline
                time.sleep(0.01)
            r = g.http.post(CHAT, json=HELLO)
            assert r.status_code == 200, r.text
            done = wait(g.http, batch_id, lambda b: b["status"] == "completed")
            ids = output_ids(g.http, done)
            # Batch requests count apart from the tiers (answered ones: the preempted never was).
            assert g.value("xpool_gateway_requests_total", tier="(batch)", code="200") == 12
            assert g.value("xpool_gateway_requests_total", tier="P1") == 1
        assert Counter(ids) == Counter(f"q{i}" for i in range(12))
        batch_bodies = [b for b in slow.arrived if b["messages"][0]["content"] != "hi"]
        assert len(batch_bodies) > 12  # the preempted line was sent again
    finally:
        slow.server.stop()


class GoneUpstream(SlowUpstream):
    """Answers as Xinference does for a UID it no longer runs (`gone`): 400 model not found."""

    def __init__(self, gone: str) -> None:
        super().__init__(delay=0.02)
        self.gone = gone

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        if body["model"] == self.gone:
            return JSONResponse({"detail": f"Model not found, uid: {self.gone}"}, status_code=400)
        return await super().chat(request)


def test_drained_and_vanished_instances_never_turn_a_line_into_an_error(tmp_path: Path):
    gone = GoneUpstream("chat--1--2")
    gone.server.start()
    t = chat(4)
    t.add("chat", "LLM", "chat--1--2", version="1", tier="P1", limit=4)
    t.mark_draining("chat--1--1")  # nothing to run on but the vanished instance, then nothing
    try:
        with gateway(gone, table=t, batch_store=DirStore(tmp_path)) as g:
            batch_id = submit(g.http, 60)
            time.sleep(1.5)  # lines meet the vanished instance only: they wait, none fails
            t.mark_draining("chat--1--2")
            b = batch(g.http, batch_id)
            assert b["status"] == "in_progress" and b["request_counts"]["failed"] == 0
            t.add("chat", "LLM", "chat--1--1", version="1", tier="P1", limit=4)  # ready again
            done = wait(g.http, batch_id, lambda b: b["status"] == "completed")
            ids = output_ids(g.http, done)
        assert done["request_counts"] == {"total": 60, "completed": 60, "failed": 0}
        assert sorted(ids) == sorted(f"q{i}" for i in range(60))
        assert done["error_file_id"] is None
    finally:
        gone.server.stop()
