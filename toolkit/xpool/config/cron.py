"""Check a cron schedule as the Kubernetes CronJob controller reads it, at validate time.

A bad schedule is otherwise accepted by `xpool validate` and refused only by the API server
when the reconciler's CronJob is applied, far from the line that caused it.
"""

from __future__ import annotations

import re

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (field name, lowest, highest, names standing for the numbers from `lowest` on)
_FIELDS = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]
_PART = re.compile(r"^(?:\*|(?P<low>[0-9a-z]+)(?:-(?P<high>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$")


def check_cron(schedule: str) -> str:
    """The schedule if it is a macro or five valid fields; ValueError naming the bad field."""
    if schedule.strip() in _MACROS:
        return schedule
    fields = schedule.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"a cron schedule has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}: e.g. '*/5 * * * *'"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for part in text.lower().split(","):
            if not _valid_part(part, low, high, names):
                raise ValueError(
                    f"cron field {name} '{text}' is not valid: use *, N, N-M, */S or lists "
                    f"of them with N in {low}-{high}"
                )
    return schedule


def _valid_part(part: str, low: int, high: int, names: list[str]) -> bool:
    match = _PART.match(part)
    if match is None or match["step"] == "0":
        return False
    bounds = [_number(match[key], low, names) for key in ("low", "high") if match[key]]
    return all(b is not None and low <= b <= high for b in bounds) and bounds == sorted(bounds)


def _number(text: str, low: int, names: list[str]) -> int | None:
    if text.isdigit():
        return int(text)
    return names.index(text) + low if text in names else None  # jan = 1, sun = 0
