"""Check a cron schedule as the Kubernetes API server reads it, at validate time.

The API server parses a CronJob's schedule with robfig/cron v3's standard parser: five
fields, or a descriptor (`@hourly`, ..., `@every <Go duration>`) matched exactly, so without
surrounding spaces; `?` stands for `*`; Quartz's `L`, `W` and `#` do not exist there; and a
`TZ=`/`CRON_TZ=` prefix (any `TZ` in the schedule) is refused in favour of `.spec.timeZone`.
A bad schedule is otherwise accepted by `xpool validate` and refused only when the
reconciler's CronJob is applied, far from the line that caused it.
"""

from __future__ import annotations

import re

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_EVERY = "@every "
# Go's time.ParseDuration: a signed sequence of decimal numbers, each with a unit; or "0".
_GO_DURATION = re.compile(
    r"^[-+]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$"
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (field name, lowest, highest, names standing for the numbers from `lowest` on)
_FIELDS = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
]
_PART = re.compile(r"^(?:[*?]|(?P<low>[0-9a-z]+)(?:-(?P<high>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$")
_QUARTZ = re.compile(r"[LW#]")  # last day, nearest weekday, Nth weekday


def check_cron(schedule: str) -> str:
    """The schedule if the API server accepts it; ValueError naming what is wrong and the
    form to use instead."""
    if "TZ" in schedule:
        raise ValueError(
            "a time zone in the schedule (TZ= or CRON_TZ=) is refused by Kubernetes; write "
            "the schedule in the cluster's time zone (the CronJob's .spec.timeZone)"
        )
    if schedule.startswith("@"):
        return _check_descriptor(schedule)
    fields = schedule.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"a cron schedule has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}: e.g. '*/5 * * * *'"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        _check_field(text, name, low, high, names)
    return schedule


def _check_descriptor(schedule: str) -> str:
    if schedule in _DESCRIPTORS:
        return schedule
    if schedule.startswith(_EVERY) and _GO_DURATION.match(schedule.removeprefix(_EVERY)):
        return schedule
    raise ValueError(
        f"unknown descriptor '{schedule}': use one of {', '.join(sorted(_DESCRIPTORS))} or "
        "'@every <duration>' (e.g. @every 5m), exactly, without spaces around it"
    )


def _check_field(text: str, name: str, low: int, high: int, names: list[str]) -> None:
    # robfig/cron skips empty list items ("1,,2")
    parts = [part for part in text.lower().split(",") if part]
    if all(_valid_part(part, low, high, names) for part in parts):
        return
    if _QUARTZ.search(text) and name in ("day of month", "day of week"):
        raise ValueError(
            f"cron field {name} '{text}': L, W and # (Quartz) are not supported by "
            "Kubernetes CronJobs; list the days instead (e.g. 28-31 or 1-7 with a day of week)"
        )
    raise ValueError(
        f"cron field {name} '{text}' is not valid: use *, ?, N, N-M, */S, N/S or lists of "
        f"them with N in {low}-{high}"
    )


def _valid_part(part: str, low: int, high: int, names: list[str]) -> bool:
    match = _PART.match(part)
    if match is None or (match["step"] is not None and int(match["step"]) == 0):
        return False
    bounds = [_number(match[key], low, names) for key in ("low", "high") if match[key]]
    return all(b is not None and low <= b <= high for b in bounds) and bounds == sorted(bounds)


def _number(text: str, low: int, names: list[str]) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    return names.index(text) + low if text in names else None  # jan = 1, sun = 0
