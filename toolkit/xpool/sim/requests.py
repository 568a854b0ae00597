"""The request record every trace loader yields, and pure helpers over request streams.

A stream is an iterator of `Request` in nondecreasing `t`; the helpers are generators so a
14-day trace is never held in memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from xpool.errors import InputError


@dataclass(frozen=True, slots=True)
class Request:
    """One LLM request: when it arrives and how many tokens it reads and writes."""

    t: float  # seconds since the trace start
    model: str
    input_tokens: int
    output_tokens: int


def window(reqs: Iterable[Request], start: float, end: float | None = None) -> Iterator[Request]:
    """The requests with start <= t < end, times unchanged; stops reading at `end`."""
    for r in reqs:
        if end is not None and r.t >= end:
            return
        if r.t >= start:
            yield r


def speedup(reqs: Iterable[Request], factor: float) -> Iterator[Request]:
    """Replay `factor` times faster (t / factor): the same requests in less time."""
    if not (factor > 0 and math.isfinite(factor)):
        raise InputError(f"speedup factor {factor!r} must be a positive finite number")
    return (Request(r.t / factor, r.model, r.input_tokens, r.output_tokens) for r in reqs)


def rename(reqs: Iterable[Request], mapping: Mapping[str, str]) -> Iterator[Request]:
    """Map trace model names onto platform model names; names not in `mapping` pass through."""
    for r in reqs:
        model = mapping.get(r.model, r.model)
        yield r if model == r.model else Request(r.t, model, r.input_tokens, r.output_tokens)
