"""A gateway replica without a shared store keeps the Batch API off and says why: 503 with
the reason (the openai client shows it), not a bare 404; the rest of `/v1/*` is served."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.gateway.serving import CHAT, TokenUpstream, gateway
from xpool.actions.gateway import batch_store_for
from xpool.adapters.object_store import DirStore


def test_batch_paths_answer_503_with_the_reason(up: TokenUpstream) -> None:
    reason = "spec.batch.store is a directory; set it to s3://bucket/prefix"
    with gateway(up, batch_off=reason) as g:
        for method, path in (
            ("GET", "/v1/batches"),
            ("POST", "/v1/batches"),
            ("GET", "/v1/batches/batch_1"),
            ("POST", "/v1/batches/batch_1/cancel"),
            ("POST", "/v1/files"),
            ("DELETE", "/v1/files/file-1"),
            ("GET", "/v1/files/file-1/content"),
        ):
            answer = g.http.request(method, path)
            assert answer.status_code == 503, (method, path)
            assert answer.json()["error"] == {
                "message": f"the Batch API is off on this gateway: {reason}",
                "type": "batch_api_off",
            }
        client = openai.OpenAI(base_url=g.server.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError, match="set it to s3://"):
            client.batches.list()
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        assert g.http.post(CHAT, json=body).status_code == 200


def test_a_directory_store_serves_one_process_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store, off = batch_store_for("batches", "laptop")
    assert isinstance(store, DirStore) and off is None
    store, off = batch_store_for("batches", "xpool-gateway-0")
    assert store is None
    assert off is not None and "replica xpool-gateway-0" in off and "s3://" in off
