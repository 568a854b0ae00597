"""`xpool batch` as a subprocess against the gateway's Batch API on uvicorn (quickstart's
model names, a real upstream): submit --wait, results and errors, list, status, cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.gateway.serving import Gateway, TokenUpstream, gateway
from xpool.adapters.object_store import DirStore
from xpool.gateway.routing import RoutingTable

QUICKSTART = str(EXAMPLES / "quickstart.yaml")


def quickstart_table() -> RoutingTable:
    t = RoutingTable(seed=1)
    t.declare("chat", "LLM", "P0", {"1": 100})
    t.add("chat", "LLM", "chat--1--1", version="1", tier="P0", limit=8)
    t.declare("embedding", "embedding", "P1", {"1": 100})
    t.add("embedding", "embedding", "embedding--1--1", version="1", tier="P1", limit=8)
    return t


@pytest.fixture(scope="module")
def running(up: TokenUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    store = DirStore(tmp_path_factory.mktemp("store"))
    with gateway(up, table=quickstart_table(), batch_store=store) as g:
        yield g


def batch(xpool, running: Gateway, *args: str):
    return xpool("batch", *args[:1], QUICKSTART, *args[1:], "--gateway", running.server.url)


def test_submit_wait_then_results(xpool, running: Gateway, tmp_path: Path):
    requests = tmp_path / "requests.jsonl"
    lines = [{"custom_id": f"e{i}", "body": {"input": f"text {i}"}} for i in range(25)]
    requests.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    submitted = batch(xpool, running, "submit", "embedding", str(requests), "--wait", "-o", "json")
    assert submitted.returncode == 0, submitted.stderr
    done = json.loads(submitted.stdout)
    assert done["status"] == "completed"
    assert done["endpoint"] == "/v1/embeddings"
    assert done["request_counts"] == {"total": 26, "completed": 25, "failed": 1}
    assert "line(s) 26 are not JSON objects" in submitted.stderr
    assert "completed 25 completed, 1 failed of 26" in submitted.stderr  # progress lines

    out = batch(xpool, running, "results", done["id"])
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(a["custom_id"] for a in answers) == sorted(x["custom_id"] for x in lines)
    assert {a["response"]["status_code"] for a in answers} == {200}

    errors = batch(xpool, running, "results", done["id"], "--errors")
    assert errors.returncode == 0, errors.stderr
    [error] = [json.loads(line) for line in errors.stdout.splitlines()]
    assert error["error"]["message"]

    status = batch(xpool, running, "status", done["id"], "-o", "json")
    assert json.loads(status.stdout)["id"] == done["id"]
    listed = batch(xpool, running, "list", "-o", "json")
    assert done["id"] in [b["id"] for b in json.loads(listed.stdout)["data"]]
    table = batch(xpool, running, "list")
    assert table.returncode == 0 and done["id"] in table.stdout


def test_chat_lines_get_model_and_url_filled_in(xpool, running: Gateway, tmp_path: Path):
    requests = tmp_path / "chat.jsonl"
    line = {"custom_id": "c1", "body": {"messages": [{"role": "user", "content": "hi"}]}}
    requests.write_text(json.dumps(line) + "\n")
    submitted = batch(xpool, running, "submit", "chat", str(requests), "--metadata", "team=eval")
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    assert batch_id.startswith("batch_")
    shown = json.loads(batch(xpool, running, "status", batch_id, "-o", "json").stdout)
    assert shown["endpoint"] == "/v1/chat/completions"
    assert shown["metadata"] == {"team": "eval"}


def test_results_of_an_unfinished_or_unknown_batch(xpool, running: Gateway):
    unknown = batch(xpool, running, "results", "batch_nope")
    assert unknown.returncode == 2
    assert "HTTP 404" in unknown.stderr and unknown.stdout == ""
    cancelled = batch(xpool, running, "cancel", "batch_nope")
    assert cancelled.returncode == 2
