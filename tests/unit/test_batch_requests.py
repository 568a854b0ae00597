"""The request file `xpool batch submit` uploads: filled in, or refused line by line."""

from __future__ import annotations

import json

import pytest

from xpool.actions.batch_requests import default_endpoint, prepare_requests
from xpool.errors import InputError

CHAT = "/v1/chat/completions"


def lines(content: bytes) -> list[dict]:
    return [json.loads(line) for line in content.decode().splitlines()]


def test_bare_lines_get_method_url_and_model():
    text = '{"custom_id": "a", "body": {"messages": []}}\n\n{"custom_id": "b"}\n'
    prepared = prepare_requests("r.jsonl", text, "chat", CHAT)
    assert prepared.lines == 2
    assert prepared.unparsable == ()
    assert lines(prepared.content) == [
        {
            "custom_id": "a",
            "body": {"messages": [], "model": "chat"},
            "url": CHAT,
            "method": "POST",
        },
        {"custom_id": "b", "body": {"model": "chat"}, "url": CHAT, "method": "POST"},
    ]


def test_complete_lines_are_kept_as_they_are():
    line = {"custom_id": "a", "method": "POST", "url": CHAT, "body": {"model": "chat", "n": 1}}
    prepared = prepare_requests("r.jsonl", json.dumps(line), "chat", CHAT)
    assert lines(prepared.content) == [line]


def test_lines_that_are_not_objects_go_through_for_the_error_file():
    text = '{"custom_id": "a"}\nnot json\n[1, 2]\n{"custom_id": "b", "body": "text"}\n'
    prepared = prepare_requests("r.jsonl", text, "chat", CHAT)
    assert prepared.unparsable == (2, 3, 4)
    assert prepared.content.decode().splitlines()[1:] == [
        "not json",
        "[1, 2]",
        '{"custom_id": "b", "body": "text"}',
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"body": {"model": "other"}}', "body.model is 'other', but this batch is for 'chat'"),
        ('{"url": "/v1/embeddings"}', "url is '/v1/embeddings', but this batch goes to"),
        ('{"method": "GET"}', "method is 'GET'; the Batch API sends POST requests only"),
    ],
)
def test_contradictions_are_located(line, message):
    text = '{"custom_id": "ok"}\n\n' + line + "\n"
    with pytest.raises(InputError) as caught:
        prepare_requests("r.jsonl", text, "chat", CHAT)
    [problem] = caught.value.problems
    assert problem.where == "r.jsonl:3:1"
    assert message in problem.message


def test_every_contradiction_is_reported_at_once():
    text = '{"body": {"model": "x"}}\n{"body": {"model": "y"}}\n'
    with pytest.raises(InputError) as caught:
        prepare_requests("r.jsonl", text, "chat", CHAT)
    assert [p.where for p in caught.value.problems] == ["r.jsonl:1:1", "r.jsonl:2:1"]


def test_an_empty_file_is_refused():
    with pytest.raises(InputError, match="no request lines"):
        prepare_requests("r.jsonl", "\n  \n", "chat", CHAT)


def test_endpoints_by_model_type():
    assert default_endpoint("llm") == CHAT
    assert default_endpoint("embedding") == "/v1/embeddings"
    assert default_endpoint("rerank") is None
