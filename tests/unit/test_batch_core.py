"""The Batch API's pure core: input lines with their numbers, whole-batch refusals, output
lines, status moves, list pages, page limits and the backlog's token estimate."""

from __future__ import annotations

import json

import pytest

from xpool.actions.gateway import runs_batches
from xpool.batch.backlog import DEFAULT_COMPLETION, line_tokens
from xpool.batch.lines import (
    batch_model,
    count_lines,
    duplicate_ids,
    error_line,
    output_line,
    parse_lines,
    succeeded,
)
from xpool.batch.objects import moved, new_batch, page, page_limit

CHAT = "/v1/chat/completions"


def line(custom_id: object, url: str = CHAT, **body: object) -> bytes:
    item = {"custom_id": custom_id, "method": "POST", "url": url, "body": {"model": "m", **body}}
    return json.dumps(item).encode()


def test_lines_keep_their_numbers_and_bad_lines_say_why():
    data = b"\n".join(
        [
            line("a"),
            b"",  # blank: skipped, but counted in the numbering
            b"{oops",
            line(7),
            line("b", url="/v1/embeddings"),
            b"[1]",
            json.dumps({"custom_id": "c", "method": "GET", "url": CHAT, "body": {}}).encode(),
            line("d"),
        ]
    )
    good, bad = parse_lines(data, CHAT)
    assert [(g.number, g.custom_id) for g in good] == [(1, "a"), (8, "d")]
    assert [(b.number, b.custom_id) for b in bad] == [
        (3, None),
        (4, None),
        (5, "b"),
        (6, None),
        (7, "c"),
    ]
    assert bad[0].message.startswith("line 3: not JSON")
    assert "custom_id" in bad[1].message and "'/v1/embeddings'" in bad[2].message
    assert "method" in bad[4].message
    assert count_lines(data) == 7


def test_a_batch_runs_one_model_and_each_custom_id_once():
    good, _ = parse_lines(b"\n".join([line("a"), line("b", model="x")]), CHAT)
    assert batch_model(good) == (None, "a batch runs one model: line 1 names 'm', line 2 names 'x'")
    good, _ = parse_lines(b"\n".join([line("a"), line("b"), line("a")]), CHAT)
    assert batch_model(good) == ("m", None)
    assert duplicate_ids(good) == (
        "custom_id 'a' is used on line 1 and on line 3; each line needs its own"
    )
    assert batch_model([]) == (None, None)


def test_output_lines_in_openai_format():
    ok = output_line("batch_1", "a", 200, "req_1", {"x": 1})
    assert ok == {
        "id": ok["id"],
        "custom_id": "a",
        "response": {"status_code": 200, "request_id": "req_1", "body": {"x": 1}},
        "error": None,
    }
    assert (
        ok["id"].startswith("batch_req_")
        and ok["id"] == output_line("batch_1", "a", 400, "r", 0)["id"]
    )
    assert succeeded(ok)
    assert not succeeded(output_line("batch_1", "a", 400, "req_1", {}))
    expired = error_line("batch_1", "a", "batch_expired", "late")
    assert expired["response"] is None and expired["error"] == {
        "code": "batch_expired",
        "message": "late",
    }
    assert not succeeded(expired)


def batch() -> dict:
    return new_batch(
        "batch_1",
        input_file_id="file-1",
        endpoint=CHAT,
        window="24h",
        metadata=None,
        model="m",
        total=3,
        now=100,
    )


def test_status_moves_stamp_their_time_and_refuse_the_impossible():
    b = batch()
    assert (b["status"], b["expires_at"], b["request_counts"]) == (
        "validating",
        100 + 86400,
        {"total": 3, "completed": 0, "failed": 0},
    )
    b = moved(moved(moved(b, "in_progress", 101), "finalizing", 102), "completed", 103)
    assert (b["in_progress_at"], b["finalizing_at"], b["completed_at"]) == (101, 102, 103)
    with pytest.raises(ValueError, match="is completed; it cannot become cancelling"):
        moved(b, "cancelling", 104)
    c = moved(moved(batch(), "cancelling", 101), "cancelled", 102)
    assert (c["cancelling_at"], c["cancelled_at"]) == (101, 102)
    with pytest.raises(ValueError):
        moved(batch(), "completed", 101)  # never without finalizing


def test_pages_follow_the_after_cursor():
    items = [{"id": f"b{i}"} for i in (5, 4, 3, 2, 1)]
    first = page(items, after=None, limit=2)
    assert (first["first_id"], first["last_id"], first["has_more"]) == ("b5", "b4", True)
    last = page(items, after="b2", limit=2)
    assert ([i["id"] for i in last["data"]], last["has_more"]) == (["b1"], False)
    empty = page(items, after="gone", limit=2)
    assert (empty["data"], empty["first_id"], empty["has_more"]) == ([], None, False)
    assert [page_limit(v) for v in (None, "1", "100", "0", "101", "x", "-1")] == [
        20,
        1,
        100,
        None,
        None,
        None,
        None,
    ]


def test_backlog_tokens_estimate():
    body = {"model": "m", "input": "x" * 400}
    assert line_tokens("/v1/embeddings", body) == len(json.dumps(body, separators=(",", ":"))) // 4
    chat = {"model": "m", "messages": [], "max_tokens": 50}
    assert line_tokens(CHAT, chat) == len(json.dumps(chat, separators=(",", ":"))) // 4 + 50
    newer = {"model": "m", "max_completion_tokens": 9, "max_tokens": 50}
    assert line_tokens(CHAT, newer) - line_tokens("/v1/embeddings", newer) == 9
    assert line_tokens(CHAT, {"model": "m"}) == 3 + DEFAULT_COMPLETION


def test_the_first_statefulset_pod_runs_the_batches():
    assert [runs_batches(r) for r in ("xpool-gateway-0", "xpool-gateway-1", "laptop", "gw-a")] == [
        True,
        False,
        True,
        True,
    ]
