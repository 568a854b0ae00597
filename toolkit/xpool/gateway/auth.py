"""Bearer tokens: the admin token of `/-/admin/*` and the optional client API keys of `/v1/*`.

Only `Authorization: Bearer <token>` counts (the scheme is case-insensitive, RFC 7235); a bare
token or another scheme is no token at all, so no client can come to rely on a lenient form.
Tokens are compared as SHA-256 digests with `hmac.compare_digest`, against every accepted key
each time: the time taken says neither how much of a token matched, nor its length, nor which
key. Tokens are never logged or echoed in an answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from xpool.gateway.responses import error


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    """The accepted bearer tokens, kept as digests."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._digests = tuple(_digest(t) for t in tokens)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accept(self, request: Request) -> bool:
        """Whether `request` carries one of the tokens as a bearer token."""
        token = bearer_token(request)
        if token is None:
            return False
        given = _digest(token)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(given, digest)
        return matched


def unauthorized(message: str, kind: str, **extra: Any) -> JSONResponse:
    """401 with the error body and the challenge RFC 6750 asks for."""
    response = error(401, message, kind, **extra)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
