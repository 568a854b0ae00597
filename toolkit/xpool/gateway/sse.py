"""Bytes of Xinference's answers as the gateway handles them: the first event of an SSE stream
(Xinference fails a stream with HTTP 200 and `data: {"error": ...}` as its first event), whole
lines of a stream, and the public model name put back in place of the instance UID."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

HEAD_LIMIT = 65_536  # stream bytes held back at most while waiting for the first data event
SSE_LINE = re.compile(rb"\r\n|\r|\n")


def first_event_data(buffer: bytes) -> bytes | None:
    """The data of the first complete SSE event that has a `data` field (comments such as
    pings skipped), or None while `buffer` holds no such event yet."""
    data: list[bytes] = []
    for line in SSE_LINE.split(buffer)[:-1]:
        if not line:
            if data:
                return b"\n".join(data)
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
    return None


def is_error_event(data: bytes) -> bool:
    """Xinference's failed stream: HTTP 200, then `data: {"error": "..."}` as the event."""
    if b'"error"' not in data:
        return False
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and "error" in payload


async def read_head(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """The stream's bytes up to its first data event, and whether that event is an error."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        data = first_event_data(buffer)
        if data is not None:
            return buffer, is_error_event(data)
        if len(buffer) > HEAD_LIMIT:
            break
    return buffer, False


def split_lines(buffer: bytes) -> tuple[bytes, bytes]:
    """Complete lines, and the incomplete rest."""
    cut = buffer.rfind(b"\n") + 1
    return buffer[:cut], buffer[cut:]


class Rewriter:
    """Puts the public model name back into Xinference's JSON (`"model": "<uid>"`)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[re.Pattern[bytes], bytes]] = {}

    def __call__(self, data: bytes, uid: str, public: str) -> bytes:
        entry = self._cache.get((uid, public))
        if entry is None:
            pattern = re.compile(rb'("model"\s*:\s*")' + re.escape(uid.encode()) + rb'"')
            entry = (pattern, b"\\g<1>" + public.encode().replace(b"\\", b"\\\\") + b'"')
            self._cache[(uid, public)] = entry
        return entry[0].sub(entry[1], data)
