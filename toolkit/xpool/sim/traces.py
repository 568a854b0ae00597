"""Recorded request traces: the Azure LLM inference trace 2023 and a generic CSV/JSONL format.

Parsers take lines (an open text file or any iterable of str) and a `source` name for messages;
they do no I/O and yield `Request`s lazily with `t` in seconds since the first request.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Literal

from xpool.errors import InputError, Problem
from xpool.sim.requests import Request

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
GENERIC_FIELDS = ("timestamp", "model", "input_tokens", "output_tokens")
_ALIASES = {
    "input_tokens": ("input_tokens", "inputTokens"),
    "output_tokens": ("output_tokens", "outputTokens"),
}

TraceFormat = Literal["csv", "jsonl"]


def _error(source: str, line: int, field: str, message: str) -> InputError:
    return InputError([Problem(where=f"{source}:{line}", path=field, message=message)])


def _tokens(value: object, source: str, line: int, field: str) -> int:
    """A token count: a whole number >= 0 (JSON 12.0 is accepted as 12)."""
    count: int | None = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            count = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    if count is None or count < 0:
        raise _error(source, line, field, f"{value!r} is not a token count (a whole number >= 0)")
    return count


def azure_requests(lines: Iterable[str], model: str, source: str) -> Iterator[Request]:
    """Requests of an Azure LLM inference trace 2023 (`AzureLLMInferenceTrace_{conv,code}.csv`).

    TIMESTAMP is wall-clock time with 7 fractional digits; `datetime.fromisoformat` parses it in
    under 0.1 us a row here (`strptime` takes 4 us) and keeps microseconds, dropping the 100 ns
    digit. Rows must be in time order, as the published files are.
    """
    rows = iter(lines)
    header = next(rows, "")
    if header.strip().lstrip("\ufeff") != AZURE_HEADER:
        raise _error(source, 1, "", f"expected the header {AZURE_HEADER!r} of an Azure LLM trace")
    first: datetime | None = None
    previous = 0.0
    for number, line in enumerate(rows, start=2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 3:
            raise _error(
                source, number, "", f"expected 3 fields ({AZURE_HEADER}), got {len(fields)}"
            )
        when: datetime | None = None
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(fields[0])
        if when is None or when.tzinfo is not None:
            raise _error(
                source,
                number,
                "TIMESTAMP",
                f"{fields[0]!r} is not like 2023-11-16 18:15:46.6805900",
            )
        if first is None:
            first = when
        t = (when - first).total_seconds()
        if t < previous:
            raise _error(
                source, number, "TIMESTAMP", "earlier than the row before; sort the trace by time"
            )
        previous = t
        yield Request(
            t,
            model,
            _tokens(fields[1], source, number, "ContextTokens"),
            _tokens(fields[2], source, number, "GeneratedTokens"),
        )


def _csv_records(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise _error(
            source, 1, "", f"empty file; expected a header naming {', '.join(GENERIC_FIELDS)}"
        )
    header = [name.strip().lstrip("\ufeff") for name in header]
    for name in GENERIC_FIELDS:
        if not any(key in header for key in _ALIASES.get(name, (name,))):
            raise _missing(source, 1, name)
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise _error(
                source,
                reader.line_num,
                "",
                f"expected {len(header)} fields as in the header, got {len(row)}",
            )
        yield reader.line_num, dict(zip(header, row, strict=True))


def _jsonl_records(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, object]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _error(source, number, "", f"not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise _error(source, number, "", "expected one JSON object per line")
        yield number, record


def _field(record: Mapping[str, object], name: str, source: str, line: int) -> object:
    for key in _ALIASES.get(name, (name,)):
        if key in record:
            return record[key]
    raise _missing(source, line, name)


def _missing(source: str, line: int, name: str) -> InputError:
    names = " or ".join(_ALIASES.get(name, (name,)))
    return _error(source, line, name, f"missing; every request needs {names}")


def _timestamp(value: object, source: str, line: int) -> float:
    t = math.nan
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            t = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        t = float(value)
    if not math.isfinite(t):
        raise _error(source, line, "timestamp", f"{value!r} is not a time in seconds")
    return t


def generic_requests(lines: Iterable[str], source: str, fmt: TraceFormat) -> Iterator[Request]:
    """Requests of a user's trace: CSV with a header, or JSON Lines, sorted by `timestamp`.

    Fields: `timestamp` (seconds; any origin, e.g. Unix time: `t` counts from the first
    request), `model`, `input_tokens` and `output_tokens` (or `inputTokens`, `outputTokens`).
    Other fields are ignored.
    """
    if fmt == "csv":
        records: Iterator[tuple[int, Mapping[str, object]]] = _csv_records(lines, source)
    elif fmt == "jsonl":
        records = _jsonl_records(lines, source)
    else:
        raise InputError(f"{source}: unknown trace format {fmt!r}; use csv or jsonl")
    return _generic(records, source)


def _generic(records: Iterator[tuple[int, Mapping[str, object]]], source: str) -> Iterator[Request]:
    first: float | None = None
    previous = -math.inf
    for line, record in records:
        t = _timestamp(_field(record, "timestamp", source, line), source, line)
        if t < previous:
            raise _error(
                source, line, "timestamp", f"{t} is earlier than the line before; sort by timestamp"
            )
        previous = t
        model = _field(record, "model", source, line)
        if not isinstance(model, str) or not model:
            raise _error(source, line, "model", f"{model!r} is not a model name")
        first = t if first is None else first
        yield Request(
            t - first,
            model,
            _tokens(_field(record, "input_tokens", source, line), source, line, "input_tokens"),
            _tokens(_field(record, "output_tokens", source, line), source, line, "output_tokens"),
        )


def _csv_text(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def generic_lines(reqs: Iterable[Request], fmt: TraceFormat) -> Iterator[str]:
    """The generic format of `reqs`, one line (with its newline) at a time; reads back exactly."""
    if fmt == "csv":
        return _csv_lines(reqs)
    if fmt == "jsonl":
        return _jsonl_lines(reqs)
    raise InputError(f"unknown trace format {fmt!r}; use csv or jsonl")


def _csv_lines(reqs: Iterable[Request]) -> Iterator[str]:
    yield ",".join(GENERIC_FIELDS) + "\n"
    for r in reqs:
        yield f"{r.t!r},{_csv_text(r.model)},{r.input_tokens},{r.output_tokens}\n"


def _jsonl_lines(reqs: Iterable[Request]) -> Iterator[str]:
    for r in reqs:
        values = (r.t, r.model, r.input_tokens, r.output_tokens)
        yield json.dumps(dict(zip(GENERIC_FIELDS, values, strict=True))) + "\n"
