"""Flag values several commands share (`--interval 15s`, `--listen HOST:PORT`), checked in one
place so every command refuses a bad value with the same one line naming the flag."""

from __future__ import annotations

from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem


def flag_seconds(flag: str, text: str, *, at_least: float = 1.0) -> float:
    """`text` ("15s", "10m", "1h") in seconds; exit 2 naming `flag` when it is not a duration
    or shorter than `at_least` (a loop faster than that only loads the systems it asks)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InputError([Problem(flag, "", str(exc))]) from None
    if seconds < at_least:
        raise InputError([Problem(flag, "", f"use at least {at_least:g}s")])
    return seconds


def check_listen(flag: str, address: str) -> None:
    """HOST:PORT with a port in 0..65535 (0: any free port), refused before anything starts
    rather than as a traceback from the server that cannot parse it."""
    _, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise InputError([Problem(flag, "", f"'{address}' is not HOST:PORT (port 0: any free)")])
