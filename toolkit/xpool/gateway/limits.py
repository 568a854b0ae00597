"""Request bodies read within limits: a size cap and a nesting cap, both from spec.gateway.

The size is checked on the declared Content-Length before any byte is read, and counted
while the body streams in (chunked uploads declare none), so an oversized body costs at most
the cap in memory: 413. The nesting is checked before `json.loads`, which recurses once per
level and would fail deep inside with a RecursionError (a 500): 400. The nesting check is
linear and runs at C speed (byte replacements, one regular expression without backtracking,
a running sum over the brackets), so no body makes it slower than parsing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from xpool.config.models import GatewaySpec
from xpool.config.sizes import format_size
from xpool.gateway.responses import error

_DEFAULTS = GatewaySpec()
# Escaped backslashes first, then escaped quotes: what is left of a string is `"[^"]*"`.
_ESCAPES = (b"\\\\", b'\\"')
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
# A string; without its closing quote it runs to the end of the body (no backtracking).
_STRING = re.compile(rb'"[^"]*"?')
# An opening bracket steps one level in (1), a closing one out (-1 as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = _DEFAULTS.max_body_size
    max_json_depth: int = _DEFAULTS.max_json_depth

    @classmethod
    def of(cls, gateway: GatewaySpec) -> RequestLimits:
        return cls(gateway.max_body_size, gateway.max_json_depth)


DEFAULT_LIMITS = RequestLimits()


def _too_large(limit: int) -> Response:
    return error(
        413,
        f"the request body is larger than {format_size(limit)} (spec.gateway.maxBodySize)",
        "invalid_request_error",
        code="request_too_large",
    )


def _not_json() -> Response:
    return error(400, "the request body is not JSON (UTF-8)", "invalid_request_error")


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The whole body, or 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether an array or object in `raw` opens more than `limit` levels deep, as the
    parser would meet it (brackets inside strings do not count). Linear, at C speed."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    for escape in _ESCAPES:
        raw = raw.replace(escape, b"")
    brackets = _STRING.sub(b"", raw.translate(None, _NOT_MARKS)).translate(_STEPS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0) > limit


async def read_json(request: Request, limits: RequestLimits) -> Any:
    """The body's JSON value, or the Response refusing it (413, or 400 for a body that is not
    JSON or nests deeper than the limit)."""
    raw = await read_body(request, limits.max_body_bytes)
    if isinstance(raw, Response):
        return raw
    try:
        # JSON between systems is UTF-8 (RFC 8259), where no byte of a multi-byte character
        # looks like a bracket or a quote: what `too_deep` relies on.
        text = raw.decode()
    except UnicodeDecodeError:
        return _not_json()
    if too_deep(raw, limits.max_json_depth):
        return error(
            400,
            f"the request body nests arrays and objects deeper than {limits.max_json_depth} "
            "levels (spec.gateway.maxJsonDepth)",
            "invalid_request_error",
            code="json_too_deep",
        )
    try:
        return json.loads(text)
    except ValueError:
        return _not_json()
