"""A test exporter over real HTTP on a loopback port, for a real Prometheus to scrape.

It serves what the reconciler reads in production, with values the test sets:
- `DCGM_FI_DEV_GPU_UTIL` as NVIDIA dcgm-exporter exposes it (gauge, percent 0-100, labels
  `gpu`, `Hostname`, `modelName`);
- `xpool_gateway_requests_total{tier, model, code}`, the gateway's request counter, whose
  rate() is the per-tier QPS (policies/promql.yaml `qps`).
Its own CollectorRegistry keeps process-wide metrics (and other tests' metrics) out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"


class _GpuUtil(Collector):
    """The gauge as a snapshot of a dict, so that a GPU can vanish (clear) like a real one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str, str], float] = {}  # (gpu, Hostname, modelName)

    def set(self, gpu: str, percent: float, hostname: str, model_name: str) -> None:
        with self._lock:
            self._drop(gpu, hostname)
            self._values[(gpu, hostname, model_name)] = percent

    def clear(self, gpu: str) -> None:
        with self._lock:
            for key in [k for k in self._values if k[0] == gpu]:
                del self._values[key]

    def _drop(self, gpu: str, hostname: str) -> None:
        for key in [k for k in self._values if k[:2] == (gpu, hostname)]:
            del self._values[key]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            GPU_UTIL, "GPU utilization (in %).", labels=["gpu", "Hostname", "modelName"]
        )
        with self._lock:
            for labels, value in sorted(self._values.items()):
                family.add_metric(list(labels), value)
        yield family


class UtilExporter:
    """Serves the metrics above on 127.0.0.1:<ephemeral port> until stop()."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._util = _GpuUtil()
        self.registry.register(self._util)
        self._requests = Counter(
            "xpool_gateway_requests",
            "Requests answered by the gateway.",
            ["tier", "model", "code"],
            registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> UtilExporter:
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        return self

    @property
    def target(self) -> str:
        if self._server is None:
            raise RuntimeError("UtilExporter.target is known only after start()")
        return f"127.0.0.1:{self._server.server_port}"

    def set(
        self,
        gpu: str,
        percent: float,
        hostname: str = "local",
        model_name: str = "NVIDIA GeForce RTX 5090",
    ) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"{GPU_UTIL} is a percentage (0-100), got {percent}")
        self._util.set(gpu, percent, hostname, model_name)

    def clear(self, gpu: str) -> None:
        """Stop exposing every series of `gpu` (as when a GPU leaves the node)."""
        self._util.clear(gpu)

    def add_requests(self, tier: str, model: str, n: int = 1, code: str = "200") -> None:
        self._requests.labels(tier=tier, model=model, code=code).inc(n)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> UtilExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
