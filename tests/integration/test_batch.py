"""The Batch API with real Xinference: `xpool up` on the quickstart (a subprocess), a
500-line embedding batch through the official `openai` client, completing while chat
requests keep succeeding."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import openai

from tests.integration.conftest import quickstart_copy
from xpool.gateway.loadgen import running_up
from xpool.local.up_state import read_up_state

LINES = 500


def test_an_embedding_batch_completes_while_chat_keeps_answering(tmp_path: Path):
    platform, state = quickstart_copy(tmp_path), tmp_path / "state"
    rows = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "embedding", "input": f"sentence number {i}"},
        }
        for i in range(LINES)
    ]
    raw = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    with running_up(platform, state):
        up = read_up_state(state)
        assert up is not None
        url = up.gateway
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        f = client.files.create(file=("e.jsonl", io.BytesIO(raw)), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h"
        )
        chat = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        answers = []
        deadline = time.monotonic() + 900
        with httpx.Client(base_url=url, timeout=120) as http:
            while (batch := client.batches.retrieve(batch.id)).status not in (
                "completed",
                "failed",
                "expired",
                "cancelled",
            ):
                assert time.monotonic() < deadline, batch
                answers.append(http.post("/v1/chat/completions", json=chat).status_code)
        assert batch.status == "completed", batch
        assert batch.request_counts.model_dump() == {
            "total": LINES,
            "completed": LINES,
            "failed": 0,
        }
        out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
        assert sorted(o["custom_id"] for o in out) == sorted(r["custom_id"] for r in rows)
        assert len(out[0]["response"]["body"]["data"][0]["embedding"]) == 384
        assert answers and set(answers) == {200}, answers
