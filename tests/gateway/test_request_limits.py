"""Request bodies within spec.gateway's limits, over real HTTP: a body over maxBodySize gets
413 before it is read (declared length) or as soon as it passes the limit (chunked, a body
that never ends); a body nested deeper than maxJsonDepth gets 400, never a 500, on `/v1/*` and
on the admin endpoint alike; bodies within the limits reach the upstream unchanged."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.serving import (
    CHAT,
    Gateway,
    Upstream,
    chat_table,
    gateway,
    read_response,
    upstream,
)
from xpool.adapters.xinference import XinferenceClient
from xpool.gateway.control import Scaler
from xpool.gateway.limits import DEFAULT_LIMITS, RequestLimits
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.wiring import write_token

SMALL = RequestLimits(max_body_bytes=64 * 1024, max_json_depth=64)


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with upstream() as running:
        yield running


@pytest.fixture
def small(up: Upstream) -> Iterator[Gateway]:
    """64 KiB bodies, 64 levels."""
    with gateway(up, limits=SMALL) as g:
        up.received.clear()
        yield g


@pytest.fixture
def default(up: Upstream) -> Iterator[Gateway]:
    """The platform file's defaults: 16 MiB bodies, 64 levels."""
    with gateway(up) as g:
        up.received.clear()
        yield g


def chat_body(size: int) -> bytes:
    """A chat request of exactly `size` bytes."""
    head = b'{"model": "chat", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def nested(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    """A chat request whose `extra` field nests arrays (or objects) so that the whole body is
    `depth` levels deep (the body itself is level 1)."""
    inner = depth - 1
    return b'{"model": "chat", "extra": ' + opener * inner + closer * inner + b"}"


def assert_error(response_body: bytes, kind: str, code: str | None = None) -> dict:
    error = json.loads(response_body)["error"]
    assert error["type"] == kind and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code
    return error


# -- size ----------------------------------------------------------------------------------------


def test_a_body_at_the_limit_passes_and_one_byte_more_is_413(small: Gateway, up: Upstream):
    ok = small.http.post(CHAT, content=chat_body(SMALL.max_body_bytes))
    assert ok.status_code == 200, ok.text
    assert up.received[-1]["model"] == "chat--1--1"
    over = small.http.post(CHAT, content=chat_body(SMALL.max_body_bytes + 1))
    assert over.status_code == 413
    error = assert_error(over.content, "invalid_request_error", "request_too_large")
    assert "64Ki" in error["message"]
    assert len(up.received) == 1


def test_a_declared_length_over_the_default_limit_is_refused_before_any_byte_is_read(up):
    """16 MiB + 1 declared and nothing sent: the answer comes without the body."""
    with gateway(up) as g, socket.create_connection(g.address, timeout=10) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {DEFAULT_LIMITS.max_body_bytes + 1}\r\n\r\n".encode()
        )
        status, body = read_response(conn)
    assert DEFAULT_LIMITS.max_body_bytes == 16 * 2**20
    assert status == 413
    assert "16Mi" in assert_error(body, "invalid_request_error", "request_too_large")["message"]


def test_a_chunked_body_is_counted_while_it_streams(small: Gateway, up: Upstream):
    """A chunked upload declares no length and here never ends: 413 as soon as it passed the
    limit, while the client is still sending."""
    chunk = b"x" * 16 * 1024
    sent = 0
    with socket.create_connection(small.address, timeout=10) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while not select.select([conn], [], [], 0.01)[0]:
            assert sent < 16 * 2**20, "no answer while 16 MiB streamed in"
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        status, body = read_response(conn)
    assert status == 413
    assert_error(body, "invalid_request_error", "request_too_large")
    assert sent > SMALL.max_body_bytes
    assert up.received == []


def test_an_ordinary_client_sending_too_much_reads_the_413(up: Upstream):
    """httpx sends the whole 17 MiB; the server drops what follows the answer."""
    with gateway(up) as g:
        r = g.http.post(CHAT, content=chat_body(17 * 2**20))
        assert r.status_code == 413
        assert g.http.post(CHAT, content=chat_body(1000)).status_code == 200


# -- nesting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opener", "closer"), [(b"[", b"]"), (b'{"a": ', b"}")], ids=["arrays", "objects"]
)
def test_200k_deep_nesting_is_a_400_not_a_500(default: Gateway, opener, closer):
    r = default.http.post(CHAT, content=nested(200_000, opener, closer))
    assert r.status_code == 400, r.text[:300]
    error = assert_error(r.content, "invalid_request_error", "json_too_deep")
    assert "deeper than 64 levels" in error["message"]
    assert "Traceback" not in r.text
    assert default.http.post(CHAT, content=chat_body(100)).status_code == 200


def test_unclosed_nesting_is_a_400(default: Gateway):
    assert default.http.post(CHAT, content=b"[" * 200_000).status_code == 400
    assert (
        default.http.post(CHAT, content=b'{"model": "chat", "x": ' + b"{" * 50).status_code == 400
    )


def test_nesting_at_the_limit_passes_and_one_level_more_is_refused(small: Gateway, up: Upstream):
    assert small.http.post(CHAT, content=nested(64)).status_code == 200
    assert small.http.post(CHAT, content=nested(65)).status_code == 400
    assert len(up.received) == 1


def test_brackets_inside_strings_do_not_count(small: Gateway, up: Upstream):
    """Escaped quotes and backslashes included: the string below holds `\\"` and `\\\\`
    before its brackets, and none of them nests anything."""
    content = '\\"' + "[" * 500 + '\\\\"' + "{" * 500 + '"'
    body = {"model": "chat", "messages": [{"role": "user", "content": content}]}
    r = small.http.post(CHAT, content=json.dumps(body).encode())
    assert r.status_code == 200, r.text
    assert up.received[-1]["messages"] == body["messages"]


def test_a_body_that_is_not_utf8_json_is_a_400(small: Gateway):
    utf16 = json.dumps({"model": "chat", "x": [[1]]}).encode("utf-16")
    for content in (b"{", b'{"model": "chat"', b"\xff\xfe{}", utf16):
        r = small.http.post(CHAT, content=content)
        assert r.status_code == 400, content
        assert_error(r.content, "invalid_request_error")


def test_the_admin_endpoint_reads_bodies_within_the_same_limits(up: Upstream, tmp_path: Path):
    token = write_token(tmp_path).read_text().strip()
    table = chat_table()
    metrics = GatewayMetrics(table)
    scaler = Scaler(XinferenceClient(up.server.url), table, metrics, {}, {}, drain_timeout=1)
    admin = {"admin": scaler, "admin_token": token, "metrics": metrics}
    with gateway(up, table=table, limits=RequestLimits(2**20, 64), **admin) as g:
        auth = {"Authorization": f"Bearer {token}"}
        deep = b'{"uids": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        r = g.http.post("/-/admin/drain", content=deep, headers=auth)
        assert r.status_code == 400
        assert_error(r.content, "invalid_request_error", "json_too_deep")
        big = b'{"uids": ["' + b"x" * 2**20 + b'"]}'
        assert g.http.post("/-/admin/drain", content=big, headers=auth).status_code == 413
        ok = g.http.post("/-/admin/drain", json={"uids": ["chat--1--1"]}, headers=auth)
        assert ok.status_code == 200 and ok.json() == {"draining": {"chat--1--1": 0}}
