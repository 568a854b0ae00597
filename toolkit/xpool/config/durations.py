"""Durations as users write them ("30s", "10m", "1h30m", or plain seconds).

Digits are ASCII only: `\\d` and `float()` also take other scripts' digits (fullwidth `３０s`),
which Kubernetes and Go's time.ParseDuration refuse and a reader may not recognise.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
# A year: more than any timeout or interval of the platform needs. Far longer ones fail at
# run time (Python's locks and sockets refuse waits beyond about 292 years, Kubernetes grace
# periods beyond int64 seconds) or lose whole seconds as floats.
MAX_SECONDS = 365 * 86400


def parse_duration(value: Any) -> float:
    """Return seconds; raise ValueError with a hint a user can act on."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    text = value.strip()
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(
            f"'{value}' is not a duration: use a number with a unit, e.g. 30s, 5m, 1h30m"
        )
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))


def at_most_a_year(seconds: float) -> float:
    if seconds > MAX_SECONDS:
        raise ValueError("longer than 365d, the most a timeout or interval may be; shorten it")
    return seconds


def format_duration(seconds: float) -> str:
    """Shortest exact rendering, so a parsed duration prints the way users write it."""
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(at_most_a_year),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
            ],
            "description": "A duration: 30s, 5m, 1h30m, or seconds as a number; at most 365d.",
        }
    ),
]
