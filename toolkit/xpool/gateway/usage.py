"""Token counts of Xinference's answers, for the autoscaler's token load (docs/gateway.md).

A whole answer carries `usage` (`prompt_tokens`, and `completion_tokens` for LLMs). A stream
carries it only in its last chunks, and Xinference's engines differ: vLLM puts `usage` on the
chunk with the finish reason whatever the client asked, the transformers engine sends it only
when the request has `stream_options.include_usage` (xinference/model/llm/transformers/core.py,
vllm/core.py). So the gateway asks for it on every stream whose client did not, and then drops
the usage-only chunk (`"choices": []`, the OpenAI shape of that chunk) on the way back: a stream
without usage would count no tokens, and the autoscaler would see less load than there is.
Rerank answers report tokens only when asked (`return_len`), so rerank is not counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# `"usage":` unescaped can only be a key (inside a JSON string its quotes are escaped), and
# Xinference's answers have one, at the top level.
_USAGE_KEY = re.compile(rb'"usage"\s*:\s*\{')
_DECODER = json.JSONDecoder()
STREAMED = ("/v1/chat/completions", "/v1/completions")


@dataclass(frozen=True)
class Usage:
    prompt: int
    completion: int


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_of(payload: Any) -> Usage | None:
    """`payload["usage"]` as counts; None when it has none."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None
    return Usage(_tokens(usage.get("prompt_tokens")), _tokens(usage.get("completion_tokens")))


def read_usage(data: bytes) -> Usage | None:
    """The `usage` object of a whole JSON answer, parsed alone: an embeddings answer may be
    megabytes of vectors, which the gateway does not decode to count a few integers."""
    found = max(_USAGE_KEY.finditer(data), key=lambda m: m.start(), default=None)
    if found is None:
        return None
    try:
        usage, _ = _DECODER.raw_decode(data[found.end() - 1 :].decode("utf-8", "replace"))
    except ValueError:
        return None
    return usage_of({"usage": usage})


def ask_usage(path: str, body: dict[str, Any]) -> bool:
    """Ask a streamed completion for its usage; True when the gateway asked (the client did
    not), so the usage-only chunk is to be dropped on the way back."""
    if path not in STREAMED or body.get("stream") is not True:
        return False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    body["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    return True


class StreamUsage:
    """Reads usage from a stream's complete lines as they pass; with `strip`, drops the
    usage-only event (its data line and the blank line that ends it)."""

    def __init__(self, strip: bool) -> None:
        self.usage: Usage | None = None  # the last one seen: the totals of the whole answer
        self._strip = strip
        self._skip_blank = False

    def feed(self, lines: bytes) -> bytes:
        """`lines` (complete lines) as the client gets them."""
        if b'"usage"' not in lines and not self._skip_blank:
            return lines
        kept: list[bytes] = []
        for line in lines.splitlines(keepends=True):
            if self._skip_blank and not line.strip():
                self._skip_blank = False
                continue
            self._skip_blank = False
            if line.startswith(b"data:") and b'"usage"' in line and self._read(line[5:]):
                self._skip_blank = True
                continue
            kept.append(line)
        return b"".join(kept)

    def _read(self, data: bytes) -> bool:
        """Note the event's usage; True when the event is to be dropped."""
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        usage = usage_of(payload)
        if usage is None:
            return False
        self.usage = usage
        return self._strip and payload.get("choices") == []
