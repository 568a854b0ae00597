"""`/metrics` and `/healthz` for `xpool reconcile --loop` (a stdlib HTTP server in a thread:
two read-only endpoints need no framework)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from xpool.reconcile.metrics import ReconcilerMetrics


class HealthServer:
    """Healthy while passes keep finishing (within 3 intervals), or while standing by."""

    def __init__(
        self,
        listen: str,
        metrics: ReconcilerMetrics,
        *,
        interval: float,
        is_leader: Callable[[], bool],
    ) -> None:
        host, _, port = listen.rpartition(":")
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    ok, text = owner.health()
                    self._send(200 if ok else 503, text.encode() + b"\n", "text/plain")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.metrics = metrics
        self.interval = interval
        self.is_leader = is_leader
        self.started = time.time()
        self._server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def health(self) -> tuple[bool, str]:
        if not self.is_leader():
            return True, "standby"
        last = self.metrics.last_pass_time or self.started
        age = time.time() - last
        if age > 3 * self.interval + 30:
            return False, f"no pass finished for {age:.0f} s"
        return True, "ok"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
