"""The Batch API over real HTTP: the official `openai` client against the gateway app on
uvicorn, in front of a real upstream; inputs refused whole store nothing; a malformed line
goes to the error file; client API keys are required as for the rest of `/v1/*`."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.serving import Gateway, TokenUpstream, gateway
from xpool.adapters.object_store import DirStore
from xpool.batch.backlog import line_tokens
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.routing import RoutingTable

KEY = "k-batch-0123456789"


def table() -> RoutingTable:
    """`chat` (an LLM) and `embed` (an embedding model), one instance each."""
    t = RoutingTable(seed=1)
    t.declare("chat", "LLM", "P1", {"1": 100})
    t.add("chat", "LLM", "chat--1--1", version="1", tier="P1", limit=8)
    t.declare("embed", "embedding", "P2", {"1": 100})
    t.add("embed", "embedding", "embed--1--1", version="1", tier="P2", limit=8)
    return t


def request(custom_id: str, model: str = "chat", url: str = "/v1/chat/completions") -> dict:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": custom_id}]}
    if url == "/v1/embeddings":
        body = {"model": model, "input": custom_id}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(items: list[Any]) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def client(g: Gateway, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=g.server.url + "/v1", api_key=key, max_retries=0)


def wait_done(c: openai.OpenAI, batch_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)


def test_openai_client_round_trip(up: TokenUpstream, tmp_path: Path):
    lines = [request(f"q{i}") for i in range(30)]
    raw = jsonl(lines[:10]) + b"{not json\n" + jsonl(lines[10:])
    with gateway(up, table=table(), client_keys=[KEY], batch_store=DirStore(tmp_path)) as g:
        c = client(g)
        uploaded = c.files.create(file=("in.jsonl", io.BytesIO(raw)), purpose="batch")
        assert (uploaded.purpose, uploaded.bytes) == ("batch", len(raw))
        assert c.files.retrieve(uploaded.id).filename == "in.jsonl"
        assert c.files.content(uploaded.id).content == raw
        batch = c.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"run": "test"},
        )
        assert batch.status == "validating"
        done = wait_done(c, batch.id)
        assert done.status == "completed", done
        assert done.request_counts.model_dump() == {"total": 31, "completed": 30, "failed": 1}
        assert done.in_progress_at and done.finalizing_at and done.completed_at
        assert done.metadata == {"run": "test"}
        out = [json.loads(x) for x in c.files.content(done.output_file_id).text.splitlines()]
        assert [o["custom_id"] for o in out] == [f"q{i}" for i in range(30)]
        first = out[0]
        assert first["id"].startswith("batch_req_") and first["error"] is None
        assert first["response"]["status_code"] == 200
        assert first["response"]["body"]["model"] == "chat"  # the public name, not the UID
        errors = [json.loads(x) for x in c.files.content(done.error_file_id).text.splitlines()]
        assert len(errors) == 1 and errors[0]["response"] is None
        assert errors[0]["error"]["code"] == "invalid_request"
        assert "line 11" in errors[0]["error"]["message"]
        listed = c.batches.list(limit=5)
        assert [b.id for b in listed.data] == [batch.id]
        files = [f.id for f in c.files.list()]  # newest first: the output files, then the input
        assert files[-1] == uploaded.id
        assert sorted(files[:-1]) == sorted([done.output_file_id, done.error_file_id])
        assert [f.id for f in c.files.list(purpose="batch")] == [uploaded.id]
        assert [f.id for f in c.files.list(order="asc", limit=1)] == files[::-1]
        assert c.files.delete(uploaded.id).deleted
        with pytest.raises(openai.NotFoundError):
            c.files.retrieve(uploaded.id)


def test_list_pages_newest_first_and_cancel(up: TokenUpstream, tmp_path: Path):
    t = table()
    t.mark_draining("embed--1--1")  # nothing runs: the batches stay in progress
    with gateway(up, table=t, batch_store=DirStore(tmp_path)) as g:
        c = client(g)
        f = c.files.create(
            file=("e.jsonl", io.BytesIO(jsonl([request("a", "embed", "/v1/embeddings")]))),
            purpose="batch",
        )
        ids = [
            c.batches.create(
                input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h"
            ).id
            for _ in range(5)
        ]
        first = c.batches.list(limit=2)
        assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
        assert [b.id for b in c.batches.list(limit=2)] == ids[::-1]  # the client pages on
        rest = c.batches.list(after=first.last_id, limit=10)
        assert [b.id for b in rest.data] == ids[::-1][2:] and not rest.has_more
        deadline = time.monotonic() + 10  # the backlog, as the reconciler reads it
        while g.value("xpool_gateway_batch_queued_requests", model="embed") < 5:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        tokens = g.value("xpool_gateway_batch_queued_tokens", model="embed")
        assert tokens == 5 * line_tokens(
            "/v1/embeddings", request("a", "embed", "/v1/embeddings")["body"]
        )
        cancelled = c.batches.cancel(ids[0])
        assert cancelled.status in ("cancelling", "cancelled")
        assert wait_done(c, ids[0]).status == "cancelled"
        assert c.batches.retrieve(ids[1]).status == "in_progress"
        assert g.value("xpool_gateway_batch_queued_requests", model="embed") == 4


@pytest.mark.parametrize(
    ("lines", "endpoint", "message"),
    [
        ([request("a"), request("b", "other")], "/v1/chat/completions", "one model"),
        ([request("a", "nope")], "/v1/chat/completions", "'nope' is not served"),
        ([request("a", "embed")], "/v1/chat/completions", "does not serve"),
        (
            [request("a", url="/v1/embeddings")],
            "/v1/embeddings",
            "is a LLM model; it does not serve",
        ),
        ([request("a"), request("a")], "/v1/chat/completions", "used on line 1 and on line 2"),
    ],
)
def test_batches_refused_whole_store_nothing(
    up: TokenUpstream, tmp_path: Path, lines: list[dict], endpoint: str, message: str
):
    with gateway(up, table=table(), batch_store=DirStore(tmp_path)) as g:
        c = client(g)
        f = c.files.create(file=("x.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        with pytest.raises(openai.BadRequestError) as refused:
            c.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")
        assert message in refused.value.message
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_files_over_the_limits_are_refused(up: TokenUpstream, tmp_path: Path):
    limits = BatchLimits(max_file_bytes=2000, max_lines=3)
    with gateway(up, table=table(), batch_store=DirStore(tmp_path), batch_limits=limits) as g:
        c = client(g)
        big = jsonl([request("x" * 3000)])
        with pytest.raises(openai.BadRequestError, match=r"spec\.batch\.maxFileSize"):
            c.files.create(file=("big.jsonl", io.BytesIO(big)), purpose="batch")
        many = jsonl([request(f"q{i}") for i in range(4)])
        with pytest.raises(openai.BadRequestError, match=r"4 request lines.*spec\.batch\.maxLines"):
            c.files.create(file=("many.jsonl", io.BytesIO(many)), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="purpose must be 'batch'"):
            c.files.create(file=("a.jsonl", io.BytesIO(b"{}")), purpose="assistants")
        two = g.http.post(
            "/v1/files",
            files=[("file", ("a.jsonl", b"{}")), ("file", ("b.jsonl", b"{}"))],
            data={"purpose": "batch"},
        )
        assert two.status_code == 400
        assert "multipart form with one file" in two.json()["error"]["message"]
        assert list(tmp_path.rglob("*.json*")) == []


def test_batch_endpoints_need_a_client_key(up: TokenUpstream, tmp_path: Path):
    with gateway(up, table=table(), client_keys=[KEY], batch_store=DirStore(tmp_path)) as g:
        for method, path in (("GET", "/v1/batches"), ("POST", "/v1/files"), ("GET", "/v1/files/x")):
            r = g.http.request(method, path)
            assert r.status_code == 401, (path, r.text)
        with pytest.raises(openai.AuthenticationError):
            client(g, "wrong").batches.list()


def test_an_expired_batch_reports_its_unfinished_lines(up: TokenUpstream, tmp_path: Path):
    t = table()
    t.mark_draining("chat--1--1")  # nothing runs before the window ends
    later = [0.0]
    with gateway(
        up, table=t, batch_store=DirStore(tmp_path), clock=lambda: time.time() + later[0]
    ) as g:
        c = client(g)
        raw = jsonl([request("a"), request("b")]) + b"[]\n" + jsonl([request("c")])
        f = c.files.create(file=("in.jsonl", io.BytesIO(raw)), purpose="batch")
        batch = c.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert batch.expires_at == batch.created_at + 24 * 3600
        while c.batches.retrieve(batch.id).status != "in_progress":
            time.sleep(0.05)
        refused = g.http.delete(f"/v1/files/{f.id}")  # the input of a running batch
        assert refused.status_code == 409 and batch.id in refused.text
        later[0] = 24 * 3600 + 1
        done = wait_done(c, batch.id)
        assert done.status == "expired" and done.expired_at and done.output_file_id is None
        assert done.request_counts.model_dump() == {"total": 4, "completed": 0, "failed": 4}
        errors = [json.loads(x) for x in c.files.content(done.error_file_id).text.splitlines()]
        assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
            (None, "invalid_request"),
            ("a", "batch_expired"),
            ("b", "batch_expired"),
            ("c", "batch_expired"),
        ]
        assert c.files.delete(f.id).deleted  # the batch is over
