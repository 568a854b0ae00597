"""One logging setup for every command: text (the message alone, as progress lines have
always looked) or JSON (one object per line with stable keys, for a cluster's log pipeline).

Keys of a JSON line: `ts` (RFC 3339, UTC), `level`, `logger`, `event` (the message), and any
`extra={...}` fields the caller passed. Secrets are never passed to a logger: API keys and
tokens live in the environment or files and are only ever sent as headers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
ROOT = "xpool"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The message alone; an error's line starts `error: `, as every error line of xpool does."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"error: {message}" if record.levelno >= logging.ERROR else message


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send the `xpool` loggers to stderr (stdout carries data only), replacing any handler
    an earlier call installed, so a command may call it once it knows its flags."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger(ROOT)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def get_logger(name: str) -> logging.Logger:
    """A logger under `xpool` (pass __name__)."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")
