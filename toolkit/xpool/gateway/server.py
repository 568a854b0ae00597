"""Run the gateway app on uvicorn in a background thread (for `xpool up`)."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from xpool.errors import InputError, RemoteError


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)


class GatewayServer:
    def __init__(self, app: Starlette, listen: str) -> None:
        self.host, self.port = split_listen(listen)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise InputError(
                    f"spec.gateway.listen: cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                    "stop what uses it or choose another port"
                ) from None
        self._thread = threading.Thread(target=self._server.run, name="gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RemoteError(f"the gateway did not start on {self.url}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._thread = None
