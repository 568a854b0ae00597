"""Batch input files (JSONL of `{custom_id, method, url, body}`) and output lines, in OpenAI's
formats.

A line that cannot be run (not JSON, a field missing, another endpoint) is no reason to fail
the batch: OpenAI reports it as a line of the error file, and so do we, naming its line
number. What makes the whole batch wrong (several models, a `custom_id` twice) is the
caller's 400 (`batch_model`, `duplicate_ids`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Endpoint -> the model type (as the routing table names it) that serves it.
ENDPOINTS = {
    "/v1/chat/completions": "LLM",
    "/v1/completions": "LLM",
    "/v1/embeddings": "embedding",
}


@dataclass(frozen=True)
class Line:
    """A request line that can run: its 1-based line number, id and request body."""

    number: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    """A line that cannot run: it becomes a line of the error file."""

    number: int
    custom_id: str | None
    message: str


def raw_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of `data` with their 1-based line numbers."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            yield number, raw


def count_lines(data: bytes) -> int:
    """Request lines in a file (blank lines do not count)."""
    return sum(1 for _ in raw_lines(data))


def _problem(item: Any, endpoint: str) -> str | None:
    """Why a parsed line cannot run as a request to `endpoint`, else None."""
    if not isinstance(item, dict):
        return "the line is not a JSON object"
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "'custom_id' must be a non-empty string"
    if item.get("method") != "POST":
        return "'method' must be \"POST\""
    if item.get("url") != endpoint:
        return f"'url' is {item.get('url')!r}, but the batch's endpoint is {endpoint!r}"
    body = item.get("body")
    if not isinstance(body, dict):
        return "'body' must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "'body' needs a 'model' field"
    return None


def parse_lines(data: bytes, endpoint: str) -> tuple[list[Line], list[BadLine]]:
    """The runnable lines of an input file and the ones that are not, in file order."""
    good: list[Line] = []
    bad: list[BadLine] = []
    for number, raw in raw_lines(data):
        try:
            item = json.loads(raw)
        except ValueError as exc:
            bad.append(BadLine(number, None, f"line {number}: not JSON ({exc})"))
            continue
        problem = _problem(item, endpoint)
        if problem is None:
            good.append(Line(number, item["custom_id"], item["body"]))
        else:
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            custom_id = custom_id if isinstance(custom_id, str) else None
            bad.append(BadLine(number, custom_id, f"line {number}: {problem}"))
    return good, bad


def batch_model(lines: Iterable[Line]) -> tuple[str | None, str | None]:
    """The one model a batch's lines name (None without lines), or the message refusing a
    batch whose lines name several (OpenAI runs one model per batch)."""
    first: Line | None = None
    for line in lines:
        if first is None:
            first = line
        elif line.body["model"] != first.body["model"]:
            return None, (
                f"a batch runs one model: line {first.number} names "
                f"{first.body['model']!r}, line {line.number} names {line.body['model']!r}"
            )
    return (first.body["model"] if first else None), None


def duplicate_ids(lines: Iterable[Line]) -> str | None:
    """The message refusing a file that uses a `custom_id` twice (its outputs could not be
    told apart), else None."""
    seen: dict[str, int] = {}
    for line in lines:
        if line.custom_id in seen:
            return (
                f"custom_id {line.custom_id!r} is used on line {seen[line.custom_id]} and on "
                f"line {line.number}; each line needs its own"
            )
        seen[line.custom_id] = line.number
    return None


def request_id(batch_id: str, custom_id: str) -> str:
    """The output line's `id`: the same for a line however often its batch is resumed."""
    digest = hashlib.sha256(f"{batch_id}\0{custom_id}".encode()).hexdigest()[:32]
    return f"batch_req_{digest}"


def output_line(
    batch_id: str, custom_id: str | None, status: int, request: str, body: Any
) -> dict[str, Any]:
    """An answered request (any status: a non-2xx one goes to the error file)."""
    return {
        "id": request_id(batch_id, custom_id or ""),
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request, "body": body},
        "error": None,
    }


def error_line(batch_id: str, custom_id: str | None, code: str, message: str) -> dict[str, Any]:
    """A request that got no answer (a line that could not run, a batch that expired)."""
    return {
        "id": request_id(batch_id, custom_id or ""),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def succeeded(line: dict[str, Any]) -> bool:
    """Whether an output line goes to the output file (else to the error file)."""
    response = line.get("response")
    return line.get("error") is None and response is not None and response["status_code"] < 300


def jsonl(lines: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
