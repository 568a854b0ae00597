"""A streaming response that settles its request however the stream ends.

A relayed stream holds an instance's lease and an upstream response until it ends. Cleaning
up in the body generator's `finally` is not enough: a server speaking ASGI spec 2.4 raises
from `send` at once when the client has already gone, and Starlette then never starts the
body, so that `finally` never runs and the lease stays held (the slot counts a request in
flight forever and a drain of the instance waits out its whole timeout).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class OwnedStream(StreamingResponse):
    """Streams `body`; then, after the last byte, a client gone mid-stream or a body never
    started alike, closes it and awaits `settle` (once, shielded from cancellation)."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        status_code: int,
        headers: Mapping[str, str],
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(body, status_code, headers=headers)
        self._body = body
        self._settle = settle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._body.aclose()
                await self._settle()
