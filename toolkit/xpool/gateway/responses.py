"""The gateway's own error answers: `{"error": {"message", "type", ...}}`."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def error(status: int, message: str, kind: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status_code=status)
